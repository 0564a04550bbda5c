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

/// The AWS CLI the tools script installs in a virtualenv of its own.
fn aws_cli() -> std::path::PathBuf {
    let venv = std::env::var("FLEETGUARD_AWSCLI_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/fleetguard/awscli-venv")
        });
    let aws = venv.join("bin/aws");
    assert!(
        aws.exists(),
        "the AWS CLI is not installed at {}: run scripts/ensure-tools.sh",
        aws.display()
    );
    aws
}

/// The docs' commands that a local AWS can answer, run as written (through bash, with the AWS
/// CLI pointed at moto): every secret the deploy guide creates, and the alarm check. Each
/// secret then reads back as the value the guide gave it.
#[test]
fn the_docs_commands_that_moto_answers_run_as_written() {
    let aws = aws_cli();
    let local = fleetguard_integration::LocalAws::start();
    let bin_dir = aws.parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |cmd: &str| {
        let o = std::process::Command::new("bash")
            .args(["-c", cmd])
            .env("PATH", &path)
            .env("AWS_ENDPOINT_URL", &local.moto)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "`{cmd}` failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut secrets = 0;
    let mut created = std::collections::BTreeSet::new();
    for cmd in commands("docs/deploy.md")
        .into_iter()
        .chain(commands("README.md"))
    {
        let cmd = cmd.trim();
        if cmd.starts_with("aws secretsmanager create-secret") {
            let name = arg(cmd, "--name").unwrap();
            // The README repeats the guide's first secret: created once.
            if !created.insert(name.to_owned()) {
                continue;
            }
            run(cmd);
            let value = cmd
                .split("--secret-string '")
                .nth(1)
                .unwrap()
                .trim_end()
                .trim_end_matches('\'');
            let stored = run(&format!(
                "aws secretsmanager get-secret-value --secret-id {name} --query SecretString --output text"
            ));
            assert_eq!(stored.trim(), value, "{name}");
            secrets += 1;
        }
        if cmd.starts_with("aws cloudwatch describe-alarms") {
            run(cmd);
        }
    }
    assert!(secrets >= 4, "ran {secrets} create-secret commands");
}
