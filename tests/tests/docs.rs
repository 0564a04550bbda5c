//! The commands the docs tell a newcomer to run, checked as far as they can be without an AWS
//! account: `aws lambda invoke` names a function (and alias) the module creates and carries a
//! payload file that exists and that the parser reads; `terraform output` names an output the
//! module has; `--alarm-names` names the module's alarm; `cargo lambda deploy` names a role.
//! (A Lambda invoke cannot run against moto here: moto runs functions in Docker.)

use fleetguard_integration::repo_root;

const DOCS: [&str; 5] = [
    "README.md",
    "docs/deploy.md",
    "docs/operations.md",
    "infra/README.md",
    "CONTRIBUTING.md",
];

const FUNCTIONS: [&str; 5] = [
    "spot-interruption",
    "asg-lifecycle",
    "ecs-deployment",
    "alarm-fanout",
    "instance-maintenance",
];

/// Every shell command in the file's ```sh blocks and inline `aws …` spans, continuation lines
/// joined.
fn commands(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t.trim_start_matches('`') == "sh";
            continue;
        }
        if in_sh {
            let t = t.split(" # ").next().unwrap().trim();
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            current.push_str(t.trim_end_matches('\\'));
            current.push(' ');
            if !t.ends_with('\\') {
                out.push(std::mem::take(&mut current));
            }
        } else {
            for span in line.split('`').skip(1).step_by(2) {
                if span.starts_with("aws lambda invoke") {
                    out.push(span.to_owned());
                }
            }
        }
    }
    out
}

fn arg<'a>(cmd: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = cmd.split_whitespace();
    while let Some(w) = words.next() {
        if w == flag {
            return words.next();
        }
    }
    None
}

#[test]
fn the_commands_in_the_docs_name_what_exists() {
    let outputs = std::fs::read_to_string(repo_root().join("infra/outputs.tf")).unwrap();
    let main_tf = std::fs::read_to_string(repo_root().join("infra/main.tf")).unwrap();
    let (mut invokes, mut checked) = (0, 0);
    for doc in DOCS {
        for cmd in commands(doc) {
            if cmd.contains("aws lambda invoke") {
                invokes += 1;
                let name = arg(&cmd, "--function-name")
                    .unwrap_or_else(|| panic!("{doc}: `{cmd}` names no function"));
                if !name.starts_with('"') {
                    let (function, alias) = name.split_once(':').unwrap_or((name, ""));
                    let function = function.strip_prefix("fleetguard-").unwrap_or_else(|| {
                        panic!(
                            "{doc}: `{cmd}`: the module names functions <name_prefix>-<function>"
                        )
                    });
                    assert!(FUNCTIONS.contains(&function), "{doc}: `{cmd}`");
                    assert!(
                        alias.is_empty()
                            || main_tf.contains(&format!("name             = \"{alias}\"")),
                        "{doc}: `{cmd}`: the module creates no alias {alias}"
                    );
                }
                let payload = arg(&cmd, "--payload")
                    .unwrap_or_else(|| panic!("{doc}: `{cmd}` has no payload: it would fail"));
                if let Some(path) = payload.strip_prefix("fileb://") {
                    if !path.ends_with("payload.json") {
                        let bytes = std::fs::read(repo_root().join(path))
                            .unwrap_or_else(|e| panic!("{doc}: `{cmd}`: {path}: {e}"));
                        fleetguard::parse_event(&bytes).unwrap_or_else(|e| {
                            panic!("{doc}: `{cmd}`: {path} does not parse: {e}")
                        });
                    }
                    assert!(
                        cmd.contains("--cli-binary-format raw-in-base64-out"),
                        "{doc}: `{cmd}`: AWS CLI v2 reads a raw JSON payload only with --cli-binary-format raw-in-base64-out"
                    );
                    checked += 1;
                }
            }
            if let Some(rest) = cmd.split("terraform output ").nth(1) {
                let name = rest
                    .split_whitespace()
                    .find(|w| !w.starts_with('-'))
                    .unwrap()
                    .trim_end_matches([')', '"']);
                assert!(
                    outputs.contains(&format!("output \"{name}\"")),
                    "{doc}: `{cmd}`: the module has no output {name}"
                );
                checked += 1;
            }
            if let Some(alarm) = arg(&cmd, "--alarm-names") {
                assert_eq!(
                    alarm.replace("fleetguard", "${var.name_prefix}"),
                    "${var.name_prefix}-failed-events"
                );
                assert!(
                    main_tf.contains("alarm_name          = \"${var.name_prefix}-failed-events\"")
                );
                checked += 1;
            }
            if cmd.contains("cargo lambda deploy") {
                assert!(
                    arg(&cmd, "--iam-role").is_some(),
                    "{doc}: `{cmd}`: without --iam-role, cargo lambda creates a role with no access to what the function calls"
                );
                checked += 1;
            }
            if cmd.starts_with("make ") {
                let target = cmd.split_whitespace().nth(1).unwrap();
                let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
                assert!(
                    makefile.contains(&format!("\n{target}:")),
                    "{doc}: `{cmd}`: no such make target"
                );
                checked += 1;
            }
        }
    }
    assert!(
        invokes >= 4,
        "found {invokes} invoke commands: the docs were not read"
    );
    assert!(checked >= 10, "checked {checked} commands");
}
