//! `docs/configuration.md` against the code, both ways: every variable the functions read is in
//! its table and every one in the table is read; and a value outside the table's "allowed"
//! fails the init of every function that reads it, naming the variable (the functions' own
//! `build`, as `main.rs` calls it, with no network).

use fleetguard_integration::repo_root;
use std::collections::BTreeSet;

/// Read by the runtime or the SDK rather than by our code.
const READ_ELSEWHERE: [&str; 4] = [
    "AWS_LAMBDA_LOG_FORMAT",
    "RUST_LOG",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_<SERVICE>",
];

fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let mut names = BTreeSet::new();
    for row in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = row.trim_start_matches('|').split('|').next().unwrap();
        for part in first.split('`').skip(1).step_by(2) {
            names.insert(part.to_owned());
        }
    }
    names
}

/// Every `lookup("X")`, `get("X")`, `var("X")`, `parse("X")` in the functions' and the shared
/// crate's sources: the variables the code reads.
fn read_by_code() -> BTreeSet<String> {
    let mut files = Vec::new();
    let mut dirs = vec![repo_root().join("shared/src")];
    for f in std::fs::read_dir(repo_root().join("functions")).unwrap() {
        dirs.push(f.unwrap().path().join("src"));
    }
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // `parse("X")` only in the config modules (elsewhere it parses values, not variables).
        let config = f.file_name().is_some_and(|n| n == "config.rs");
        for call in ["lookup(\"", "get(\"", "var(\"", "parse(\""] {
            if call.starts_with("parse") && !config {
                continue;
            }
            for (i, _) in text.match_indices(call) {
                let rest = &text[i + call.len()..];
                let name = &rest[..rest.find('"').unwrap_or(0)];
                if name.len() > 3
                    && name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn the_table_lists_exactly_what_the_code_reads() {
    let doc = documented();
    let code = read_by_code();
    assert!(code.len() > 30, "the scan found too little: {code:?}");
    let undocumented: Vec<_> = code.difference(&doc).collect();
    assert!(
        undocumented.is_empty(),
        "read by the code, missing from docs/configuration.md: {undocumented:?}"
    );
    let unread: Vec<_> = doc
        .difference(&code)
        .filter(|n| !READ_ELSEWHERE.contains(&n.as_str()))
        .collect();
    assert!(
        unread.is_empty(),
        "in docs/configuration.md, read by no code: {unread:?}"
    );
}

const SPOT: &str = "spot-interruption";
const ASG: &str = "asg-lifecycle";
const DEPLOY: &str = "ecs-deployment";
const ALARM: &str = "alarm-fanout";
const MAINT: &str = "instance-maintenance";
const ALL: [&str; 5] = [SPOT, ASG, DEPLOY, ALARM, MAINT];

/// A value outside "allowed" for each variable, and the functions that read it.
fn bad_values() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let fleet = vec![SPOT, ASG, MAINT];
    vec![
        ("SNS_TOPIC_ARN", "my-topic", ALL.to_vec()),
        ("SLACK_WEBHOOK_SECRET_ARN", "slack hook!", ALL.to_vec()),
        (
            "SLACK_WEBHOOK_URL",
            "http://hooks.slack.com/x",
            ALL.to_vec(),
        ),
        ("SLACK_BOT_TOKEN_SECRET_ARN", "bot token", ALL.to_vec()),
        ("SLACK_API_URL", "ftp://slack.com/api/", ALL.to_vec()),
        ("PAGERDUTY_EVENTS_URL", "not a url", ALL.to_vec()),
        ("NOTIFY_ROUTES", "[{", ALL.to_vec()),
        ("SLACK_CHANNEL", "two words", ALL.to_vec()),
        ("DEDUPE_TABLE", "my table", ALL.to_vec()),
        ("SLACK_MAX_ATTEMPTS", "0", ALL.to_vec()),
        ("MUTED_ALARMS", "sometimes", vec![ALARM]),
        ("SUPPRESSED_ALARMS", "maybe", vec![ALARM]),
        ("ECS_CLUSTERS", "prod cluster!", fleet.clone()),
        ("TARGET_GROUP_ARNS", "web", fleet.clone()),
        ("MANAGED_ASG_TAG", "=oops", fleet.clone()),
        ("AUTO_SCALING_GROUPS", "web,bad\u{7}group", fleet.clone()),
        ("LIFECYCLE_HOOKS", "my hook", vec![ASG, MAINT]),
        ("MAX_DRAIN_SECONDS", "172801", vec![ASG]),
        ("DRAIN_TIMEOUT_RESULT", "TERMINATE", vec![ASG]),
        ("LAUNCH_TIMEOUT_SECONDS", "-1", vec![ASG]),
        ("LAUNCH_TIMEOUT_RESULT", "maybe", vec![ASG]),
        ("REBALANCE_ACTION", "panic", vec![SPOT]),
        ("REBALANCE_UNDO_SECONDS", "1h", vec![ASG]),
        ("LAUNCH_FAILURE_WINDOW_SECONDS", "999999999", vec![ASG]),
        ("MAINTENANCE_ACTION", "reboot", vec![MAINT]),
        ("MAINTENANCE_LEAD_SECONDS", "59", vec![MAINT]),
        ("SCHEDULER_ROLE_ARN", "scheduler", vec![MAINT]),
        (
            "SCHEDULE_TARGET_ARN",
            "arn:aws:iam::123456789012:role/x",
            vec![MAINT],
        ),
        ("SCHEDULE_GROUP", "bad group name!", vec![MAINT]),
        ("FAILED_EVENTS_QUEUE_ARN", "not-an-arn", vec![MAINT]),
        ("REPORT_SUCCESS", "perhaps", vec![DEPLOY]),
        ("SERVICE_ALERT_WINDOW_SECONDS", "0", vec![DEPLOY]),
        ("REPORT_TASK_FAILURES", "2", vec![DEPLOY]),
        ("TLS_ROOTS", "bogus", ALL.to_vec()),
        ("MEMBER_ACCOUNTS", "1111", ALL.to_vec()),
        ("ORGANIZATION_ID", "r-abcd", ALL.to_vec()),
        ("HUB_ACCOUNT_ID", "the-hub", ALL.to_vec()),
        ("MEMBER_ROLE_NAME", "role/with/path", ALL.to_vec()),
        ("ACCOUNT_NAMES", "[\"prod\"]", ALL.to_vec()),
        (
            "CONSOLE_SHORTCUT_URL",
            "http://d-1.awsapps.com/start",
            ALL.to_vec(),
        ),
        ("CONSOLE_ROLE_NAME", "Read Only", ALL.to_vec()),
        ("DRY_RUN", "maybe", ALL.to_vec()),
        ("METRICS_NAMESPACE", &*"x".repeat(420).leak(), ALL.to_vec()),
    ]
}

/// What each function needs set to start at all (instance-maintenance schedules).
fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/fleetguard-scheduler",
        ),
        (
            "SCHEDULE_TARGET_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance",
        ),
    ]
}

async fn init(function: &str, env: &[(&str, &str)]) -> Result<(), fleetguard::config::ConfigError> {
    let sdk = aws_config::SdkConfig::builder().build();
    let lookup = fleetguard::config::lookup_in(env);
    // As each `main.rs` wires it: the function, then its mode (standalone or a hub).
    let hub = |f| fleetguard::hub::Hub::new(f, &lookup, &sdk).map(drop);
    match function {
        SPOT => hub(spot_interruption::build(&lookup, &sdk).await?),
        ASG => fleetguard::hub::Hub::new(asg_lifecycle::build(&lookup, &sdk).await?, &lookup, &sdk)
            .map(drop),
        DEPLOY => {
            fleetguard::hub::Hub::new(ecs_deployment::build(&lookup, &sdk).await?, &lookup, &sdk)
                .map(drop)
        }
        ALARM => {
            fleetguard::hub::Hub::new(alarm_fanout::build(&lookup, &sdk).await?, &lookup, &sdk)
                .map(drop)
        }
        MAINT => fleetguard::hub::Hub::new(
            instance_maintenance::build(&lookup, &sdk).await?,
            &lookup,
            &sdk,
        )
        .map(drop),
        other => panic!("no function {other}"),
    }
}

#[tokio::test]
async fn every_function_starts_with_the_defaults() {
    for f in ALL {
        init(f, &base())
            .await
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[tokio::test]
async fn a_value_outside_allowed_fails_init_naming_its_variable() {
    let bad = bad_values();
    // Every variable of the table that is ours to check has a bad value here.
    let covered: BTreeSet<String> = bad.iter().map(|(v, _, _)| (*v).to_owned()).collect();
    let ours: BTreeSet<String> = documented()
        .into_iter()
        .filter(|n| !READ_ELSEWHERE.contains(&n.as_str()) && n != "AWS_LAMBDA_LOG_LEVEL")
        .collect();
    assert_eq!(
        ours.difference(&covered).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented variables without a bad value here"
    );
    for (variable, value, functions) in bad {
        for f in functions {
            let mut env = base();
            if variable == "SLACK_CHANNEL" {
                // The Web API's channel is checked once there is a bot to post with.
                env.push((
                    "SLACK_BOT_TOKEN_SECRET_ARN",
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:bot-AbCdEf",
                ));
            }
            env.retain(|(k, _)| *k != variable);
            env.push((variable, value));
            match init(f, &env).await {
                Ok(()) => panic!("{f} started with {variable}={value:?}"),
                Err(e) => assert_eq!(e.variable, variable, "{f}: {e}"),
            }
        }
    }
}

/// Every variable is reachable from the Terraform module: the table's "module input" names
/// inputs that exist, and the module sets the variable (a stranger never has to edit the
/// module to reach a setting). "none" only where the module has no business setting it.
#[test]
fn every_variable_is_reachable_from_a_module_input() {
    let doc = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let variables_tf = std::fs::read_to_string(repo_root().join("infra/variables.tf")).unwrap();
    let main_tf = std::fs::read_to_string(repo_root().join("infra/main.tf")).unwrap();
    // Set by Lambda from the module's logging_config, not as environment variables.
    let logging = ["AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"];
    let no_input = [
        "SLACK_WEBHOOK_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_<SERVICE>",
    ];
    let mut rows = 0;
    for row in doc.lines().filter(|l| l.starts_with("| `")) {
        rows += 1;
        let cells: Vec<&str> = row.trim_start_matches('|').split(" | ").collect();
        let names: Vec<&str> = cells[0].split('`').skip(1).step_by(2).collect();
        let input = cells[1].trim();
        if input.starts_with("none") {
            assert!(
                names.iter().all(|n| no_input.contains(n)),
                "{names:?}: no module input, and not one the module should leave out"
            );
            continue;
        }
        for i in input
            .split('`')
            .skip(1)
            .step_by(2)
            // Input names only (not `JSON` or `<name_prefix>-maintenance`).
            .filter(|i| i.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        {
            assert!(
                variables_tf.contains(&format!("variable \"{i}\" {{")),
                "{names:?}: the module has no input {i}"
            );
        }
        for n in names.iter().filter(|n| !logging.contains(n)) {
            let set = main_tf.match_indices(n).any(|(at, _)| {
                let before = main_tf[..at].chars().next_back();
                let after = main_tf[at + n.len()..].trim_start();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && after.starts_with('=')
            });
            assert!(set, "{n}: infra/main.tf never sets it");
        }
    }
    assert!(rows > 35, "the table was not read: {rows} rows");
}
