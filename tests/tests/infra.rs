//! The Terraform module in `infra/`: formatting and validation of the module and every example
//! (offline, with the hashicorp/aws provider from a local filesystem mirror when the machine has
//! one), checkov, `terraform test`, the EventBridge patterns against every sample event through
//! moto's EventBridge, every example applied and destroyed against moto, the rendered IAM
//! policies against every call the functions make, and the READMEs' input and output tables.
//!
//! Needs Terraform >= 1.7 (`scripts/tf.sh` says how to get it) and, for the IAM check, Node.js
//! with npm. They are `#[ignore]`d so that a skip shows: `make test` runs them
//! (`--include-ignored`), `FLEETGUARD_SKIP_INFRA=1 make test` does not, and the summary counts
//! them as skipped.

use fleetguard_integration::terraform::{
    EXAMPLES, function_bin_dir, infra_copy, init, moto_override, moto_tool, placeholder_zip,
    require_terraform, tempdir, text, tf,
};
use fleetguard_integration::{LocalAws, python, repo_root};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn terraform_fmt_and_validate_the_module_and_every_example() {
    require_terraform();
    let infra = repo_root().join("infra");
    let o = tf(
        &infra,
        Path::new("/nonexistent"),
        &["fmt", "-check", "-recursive", "-diff"],
    );
    assert!(o.status.success(), "terraform fmt -check:\n{}", text(&o));
    let tmp = tempdir("validate");
    let mut dirs = vec![infra.clone(), infra.join("modules/patterns")];
    dirs.extend(EXAMPLES.iter().map(|e| infra.join("examples").join(e)));
    for (i, dir) in dirs.iter().enumerate() {
        let data = tmp.join(i.to_string());
        init(dir, &data);
        let o = tf(dir, &data, &["validate", "-no-color", "-json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        assert_eq!(
            v["valid"],
            true,
            "terraform validate {}:\n{}",
            dir.display(),
            text(&o)
        );
        assert_eq!(v["warning_count"], 0, "{}: {}", dir.display(), text(&o));
    }
}

/// `terraform test` (infra/tests/*.tftest.hcl): the module's safety defaults and preconditions
/// against a mock provider.
#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn terraform_test_of_the_module_passes() {
    require_terraform();
    let infra = repo_root().join("infra");
    let data = tempdir("tftest");
    init(&infra, &data);
    let o = tf(&infra, &data, &["test", "-no-color"]);
    let out = text(&o);
    assert!(o.status.success(), "terraform test:\n{out}");
    assert!(
        out.contains("Success!") && out.contains(" 0 failed"),
        "terraform test:\n{out}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn checkov_passes_and_every_skip_says_why() {
    require_terraform();
    let venv = std::env::var("FLEETGUARD_CHECKOV_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/fleetguard/checkov-venv")
        });
    let checkov = venv.join("bin/checkov");
    assert!(
        checkov.exists(),
        "checkov is not installed at {}: run scripts/ensure-tools.sh",
        checkov.display()
    );
    // One run: failures, the summary and the skips all come from the same report.
    let o = Command::new(&checkov)
        .args([
            "-d",
            "infra",
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("checkov output is not JSON ({e}):\n{}", text(&o)));
    let report = if v.is_array() { v[0].clone() } else { v };
    let (summary, all) = (&report["summary"], &report["results"]);
    assert_eq!(
        summary["failed"], 0,
        "checkov failed checks:\n{}",
        all["failed_checks"]
    );
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 50,
        "checkov checked too little: {summary}"
    );
    // Every skipped check carries its reason in the code.
    let skips = all["skipped_checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!skips.is_empty(), "{summary}");
    for s in skips {
        let reason = s["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.trim().len() > 15,
            "{} on {} is skipped without a reason",
            s["check_id"],
            s["resource"]
        );
    }
}

/// The patterns as the module renders them for these inputs (the pure patterns module, applied
/// with local state: no provider, no AWS).
fn render_patterns(inputs: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let dir = tempdir("patterns");
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "module \"p\" {{\n  source = \"{}\"\n{inputs}\n}}\noutput \"patterns\" {{ value = module.p.patterns }}\noutput \"targets\" {{ value = module.p.targets }}\n",
            repo_root().join("infra/modules/patterns").display()
        ),
    )
    .unwrap();
    let data = dir.join(".tfdata");
    let o = tf(&dir, &data, &["init", "-input=false", "-no-color"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tf(
        &dir,
        &data,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = tf(&dir, &data, &["output", "-json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let map = |k: &str| -> BTreeMap<String, String> {
        v[k]["value"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    (map("patterns"), map("targets"))
}

fn route(
    aws: &LocalAws,
    patterns: &BTreeMap<String, String>,
    events: &Path,
) -> BTreeMap<String, BTreeSet<String>> {
    let file = tempdir("route").join("patterns.json");
    std::fs::write(&file, serde_json::to_string(patterns).unwrap()).unwrap();
    let routed = moto_tool(
        aws,
        &[
            "route",
            "--patterns",
            file.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
    );
    serde_json::from_value(routed).unwrap()
}

/// The rules a sample is meant to reach, from what it is (the intent the patterns implement).
fn intended(e: &Value) -> BTreeSet<String> {
    let d = &e["detail"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = BTreeSet::new();
    let mut add = |r: &str| {
        out.insert(r.to_owned());
    };
    match (s(&e["source"]).as_str(), s(&e["detail-type"]).as_str()) {
        (
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning" | "EC2 Instance Rebalance Recommendation",
        ) => add("spot_interruption"),
        (
            "aws.autoscaling",
            "EC2 Instance-launch Lifecycle Action" | "EC2 Instance-terminate Lifecycle Action",
        ) => add("asg_lifecycle_action"),
        ("aws.ecs", "ECS Container Instance State Change")
            if ["DRAINING", "ACTIVE"].contains(&s(&d["status"]).as_str()) =>
        {
            add("asg_lifecycle_container_instance")
        }
        ("aws.ecs", "ECS Task State Change") if s(&d["lastStatus"]) == "STOPPED" => {
            if d.get("containerInstanceArn").is_some() {
                add("asg_lifecycle_task_stopped");
            }
            if s(&d["stopCode"]) == "SpotInterruption" {
                add("ecs_task_stopped");
            }
        }
        ("aws.ecs", "ECS Deployment State Change") => add("ecs_deployment_state"),
        ("aws.ecs", "ECS Service Action")
            if ["WARN", "ERROR"].contains(&s(&d["eventType"]).as_str()) =>
        {
            add("ecs_service_action")
        }
        (
            "aws.cloudwatch",
            "CloudWatch Alarm State Change" | "CloudWatch Alarm Contributor State Change",
        ) => add("alarm_fanout"),
        ("aws.health", "AWS Health Event")
            if s(&d["service"]) == "EC2" && s(&d["eventTypeCategory"]) == "scheduledChange" =>
        {
            add("instance_maintenance_health")
        }
        ("aws.ec2", "EC2 Instance State-change Notification")
            if ["stopping", "shutting-down", "running"].contains(&s(&d["state"]).as_str()) =>
        {
            add("instance_maintenance_state")
        }
        (
            "aws.autoscaling",
            "EC2 Instance Launch Unsuccessful"
            | "EC2 Auto Scaling Instance Refresh Failed"
            | "EC2 Auto Scaling Instance Refresh Cancelled",
        ) => add("asg_lifecycle_group_events"),
        ("aws.autoscaling", t) if t.starts_with("EC2 Auto Scaling Instance Refresh Rollback") => {
            add("asg_lifecycle_group_events")
        }
        _ => {}
    }
    out
}

#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn every_sample_event_reaches_exactly_the_rules_of_its_function() {
    require_terraform();
    let (patterns, targets) = render_patterns("");
    let aws = LocalAws::start();
    let events = repo_root().join("events");
    let routed = route(&aws, &patterns, &events);
    assert!(
        routed.len() > 50,
        "only {} EventBridge samples",
        routed.len()
    );
    let manifest: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(events.join("manifest.json")).unwrap())
            .unwrap();
    let mut reached_functions = BTreeSet::new();
    for (sample, rules) in &routed {
        let e: Value =
            serde_json::from_str(&std::fs::read_to_string(events.join(sample)).unwrap()).unwrap();
        assert_eq!(rules, &intended(&e), "{sample}");
        // Only functions the manifest says the sample feeds.
        if let Some(fed) = manifest.get(sample).and_then(|m| m["functions"].as_array()) {
            for r in rules {
                let f = &targets[r];
                assert!(
                    fed.iter().any(|x| x == f),
                    "{sample} reaches {f} ({r}), which it does not feed"
                );
                reached_functions.insert(f.clone());
            }
        }
    }
    assert_eq!(
        reached_functions,
        [
            "alarm-fanout",
            "asg-lifecycle",
            "ecs-deployment",
            "instance-maintenance",
            "spot-interruption"
        ]
        .map(String::from)
        .into()
    );
}

#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn narrowed_patterns_only_match_the_given_clusters_groups_and_hooks() {
    require_terraform();
    let (patterns, _) = render_patterns(
        r#"  ecs_cluster_arns = ["arn:aws:ecs:eu-west-1:482917350264:cluster/prod-ecs"]
  auto_scaling_group_names = ["prod-ecs-spot-asg"]
  lifecycle_hook_names = ["fleetguard-drain"]
  rebalance_action = "ignore""#,
    );
    let aws = LocalAws::start();
    // The samples, and copies of them moved to another cluster, group and hook.
    let dir = tempdir("narrowed");
    let events = repo_root().join("events");
    for name in [
        "asg/terminate-lifecycle-action.json",
        "ecs/container-instance-draining.json",
        "ecs/deployment-failed.json",
        "ecs/service-task-start-impaired.json",
        "spot/rebalance-recommendation.json",
        "spot/interruption-terminate.json",
    ] {
        let text = std::fs::read_to_string(events.join(name)).unwrap();
        let flat = name.replace('/', "-");
        std::fs::write(dir.join(format!("ours-{flat}")), &text).unwrap();
        let other = text
            .replace("prod-ecs-spot-asg", "someone-elses-asg")
            .replace("fleetguard-drain", "someone-elses-hook")
            .replace("/prod-ecs", "/other-cluster");
        std::fs::write(dir.join(format!("other-{flat}")), other).unwrap();
    }
    let routed = route(&aws, &patterns, &dir);
    let got = |n: &str| routed[n].iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        got("ours-asg-terminate-lifecycle-action.json"),
        ["asg_lifecycle_action"]
    );
    assert_eq!(
        got("ours-ecs-container-instance-draining.json"),
        ["asg_lifecycle_container_instance"]
    );
    assert_eq!(
        got("ours-ecs-deployment-failed.json"),
        ["ecs_deployment_state"]
    );
    assert_eq!(
        got("ours-ecs-service-task-start-impaired.json"),
        ["ecs_service_action"]
    );
    assert_eq!(
        got("ours-spot-interruption-terminate.json"),
        ["spot_interruption"]
    );
    // REBALANCE_ACTION=ignore: not routed at all.
    assert!(got("ours-spot-rebalance-recommendation.json").is_empty());
    for other in [
        "other-asg-terminate-lifecycle-action.json",
        "other-ecs-container-instance-draining.json",
        "other-ecs-deployment-failed.json",
        "other-ecs-service-task-start-impaired.json",
    ] {
        assert!(got(other).is_empty(), "{other} matched {:?}", got(other));
    }
}

/// Apply an example against its own moto, check what it made, and destroy it.
fn example_applies_and_destroys(example: &str, expected: &[(&str, &str)], absent: &[(&str, &str)]) {
    let aws = LocalAws::start();
    let tmp = infra_copy(example);
    let dir = tmp.join("infra/examples").join(example);
    moto_override(&dir, &aws.moto, "eu-west-1");
    let zip = placeholder_zip(&tmp);
    let net = moto_tool(&aws, &["network"]);
    let mut vars = serde_json::json!({
        "zip_paths": {
            "spot-interruption": zip, "asg-lifecycle": zip, "ecs-deployment": zip, "alarm-fanout": zip,
            "instance-maintenance": zip,
        }
    });
    let take: &[&str] = match example {
        "ecs-spot" => &["subnet_ids", "image_id"],
        "ec2-alb" => &[
            "vpc_id",
            "subnet_ids",
            "image_id",
            "slack_webhook_secret_arn",
        ],
        _ => &["vpc_id", "subnet_ids"],
    };
    for k in take {
        vars[*k] = net[*k].clone();
    }
    let var_file = tmp.join("example.tfvars.json");
    std::fs::write(&var_file, vars.to_string()).unwrap();
    let var_arg = format!("-var-file={}", var_file.display());
    let data = tmp.join(".tfdata");
    let o = tf(&dir, &data, &["init", "-input=false", "-no-color"]);
    assert!(o.status.success(), "{example} init:\n{}", text(&o));
    let o = tf(
        &dir,
        &data,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_arg,
        ],
    );
    assert!(o.status.success(), "{example} apply:\n{}", text(&o));

    let has = |v: &Value, k: &str, name: &str| v[k].as_array().unwrap().iter().any(|x| x == name);
    let v = moto_tool(&aws, &["inventory"]);
    for (kind, name) in expected {
        assert!(
            has(&v, kind, name),
            "{example}: {kind} {name} missing after apply: {v}"
        );
    }
    for (kind, name) in absent {
        assert!(
            !has(&v, kind, name),
            "{example}: {kind} {name} should not exist: {v}"
        );
    }
    if example == "fargate-alarms" {
        // The secrets and topic the routes name are granted, with nothing listed twice by hand.
        let grants: Vec<&str> = v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|g| g.starts_with("fleetguard-alarm-fanout-"))
            .collect();
        for wanted in [
            "/secretsmanager:GetSecretValue/arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/pagerduty-routing-key-",
            "/secretsmanager:GetSecretValue/arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/slack-bot-token-",
            "/sns:Publish/arn:aws:sns:eu-west-1:123456789012:shop-oncall",
        ] {
            assert!(
                grants.iter().any(|g| g.contains(wanted)),
                "{example}: alarm-fanout is not granted {wanted}: {grants:#?}"
            );
        }
    }
    let o = tf(&dir, &data, &["output", "-json"]);
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        out["fleetguard"]["value"]["dlq"]
            .as_str()
            .unwrap()
            .ends_with("/fleetguard-failed-events"),
        "{example}: {out}"
    );

    let o = tf(
        &dir,
        &data,
        &[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_arg,
        ],
    );
    assert!(o.status.success(), "{example} destroy:\n{}", text(&o));
    let v = moto_tool(&aws, &["inventory"]);
    for kind in ["functions", "rules", "queues", "tables", "alarms", "roles"] {
        assert!(
            v[kind].as_array().unwrap().is_empty(),
            "{example}: {kind} left after destroy: {v}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Every example applied and destroyed, each against its own moto and at the same time: the
/// applies mostly wait on the provider's waiters (a load balancer's ~60 s), not on the CPU.
#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn every_example_applies_and_destroys_against_moto() {
    require_terraform();
    std::thread::scope(|scope| {
        let ecs_spot = scope.spawn(|| {
            example_applies_and_destroys(
                "ecs-spot",
                &[
                    ("functions", "fleetguard-spot-interruption"),
                    ("functions", "fleetguard-asg-lifecycle"),
                    ("functions", "fleetguard-ecs-deployment"),
                    ("rules", "fleetguard-asg-lifecycle-sweep"),
                    ("rules", "fleetguard-spot-interruption"),
                    ("roles", "fleetguard-asg-lifecycle-eu-west-1"),
                    ("hooks", "facerec-workers/fleetguard-drain"),
                    ("hooks", "facerec-workers/fleetguard-join"),
                    ("capacity_providers", "facerec-cluster/facerec-spot"),
                    ("services", "facerec-cluster/facerec-worker"),
                    ("functions", "fleetguard-instance-maintenance"),
                    ("rules", "fleetguard-instance-maintenance-health"),
                    ("rules", "fleetguard-instance-maintenance-state"),
                    ("rules", "fleetguard-asg-lifecycle-group-events"),
                    ("roles", "fleetguard-scheduler-eu-west-1"),
                    ("schedule_groups", "fleetguard-maintenance"),
                    ("dashboards", "fleetguard-fleet-eu-west-1"),
                ],
                &[("functions", "fleetguard-alarm-fanout")],
            );
        });
        let ec2_alb = scope.spawn(|| {
            example_applies_and_destroys(
                "ec2-alb",
                &[
                    ("functions", "fleetguard-spot-interruption"),
                    ("functions", "fleetguard-asg-lifecycle"),
                    ("functions", "fleetguard-alarm-fanout"),
                    ("load_balancers", "shop-alb"),
                    ("listeners", "shop-alb:80"),
                    ("hooks", "shop-api/fleetguard-drain"),
                    ("hooks", "shop-worker/fleetguard-drain"),
                    ("spot_groups", "shop-worker"),
                    ("alarms", "shop-api-cpu"),
                    ("alarms", "shop-worker-cpu"),
                    ("topics", "shop-alarms"),
                    // Plain EC2 behind the ALB: stopping instances and AWS's scheduled changes.
                    ("functions", "fleetguard-instance-maintenance"),
                    ("rules", "fleetguard-instance-maintenance-state"),
                    ("dashboards", "fleetguard-fleet-eu-west-1"),
                ],
                &[
                    ("functions", "fleetguard-ecs-deployment"),
                    // No ECS: no rule takes ECS events.
                    ("rules", "fleetguard-asg-lifecycle-task-stopped"),
                    ("rules", "fleetguard-asg-lifecycle-container-instance"),
                    ("spot_groups", "shop-api"),
                    // Launch hooks only for groups that join an ECS cluster.
                    ("hooks", "shop-api/fleetguard-join"),
                ],
            );
        });
        let fargate_alarms = scope.spawn(|| {
            example_applies_and_destroys(
                "fargate-alarms",
                &[
                    ("functions", "fleetguard-alarm-fanout"),
                    ("functions", "fleetguard-ecs-deployment"),
                    ("rules", "fleetguard-alarm-fanout"),
                    ("rules", "fleetguard-ecs-deployment-state"),
                    ("queues", "fleetguard-failed-events"),
                    ("tables", "fleetguard-dedupe"),
                    ("topics", "fleetguard-notifications"),
                    ("topics", "shop-oncall"),
                    ("alarms", "fleetguard-failed-events"),
                    ("alarms", "shop-p0-api-5xx"),
                    ("alarm_dimensions", "shop-p0-api-5xx/LoadBalancer"),
                    ("alarms", "shop-p1-api-unhealthy-hosts"),
                    ("alarms", "shop-p2-api-cpu"),
                    ("load_balancers", "shop-alb"),
                    ("capacity_providers", "shop-cluster/FARGATE_SPOT"),
                    ("services", "shop-cluster/api"),
                    ("secrets", "shop/slack-bot-token"),
                    ("secrets", "shop/pagerduty-routing-key"),
                    (
                        "function_env",
                        "fleetguard-alarm-fanout/SLACK_CHANNEL=#shop-alerts",
                    ),
                ],
                &[
                    ("functions", "fleetguard-spot-interruption"),
                    ("rules", "fleetguard-asg-lifecycle-sweep"),
                    // Fargate only: no EC2 instance to maintain.
                    ("functions", "fleetguard-instance-maintenance"),
                    ("schedule_groups", "fleetguard-maintenance"),
                ],
            );
        });
        // A hub and two members, then both sides' IAM by enforcement.
        let organization = scope.spawn(|| {
            fleetguard_integration::infra_organization::the_organization_example_applies_and_both_sides_iam_is_enforced();
        });
        for (name, t) in [
            ("ecs-spot", ecs_spot),
            ("ec2-alb", ec2_alb),
            ("fargate-alarms", fargate_alarms),
            ("organization", organization),
        ] {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
            eprintln!("{name}: applied and destroyed");
        }
    });
}

/// Every input and output of the module and of each example is in its README's tables, and the
/// tables name nothing that is gone.
#[test]
fn readmes_list_every_input_and_output() {
    let names = |files: &[PathBuf], kind: &str| -> BTreeSet<String> {
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| {
                l.strip_prefix(&format!("{kind} \""))
                    .and_then(|r| r.split('"').next())
                    .map(str::to_owned)
            })
            .collect()
    };
    let rows = |readme: &Path, section: &str| -> BTreeSet<String> {
        let text =
            std::fs::read_to_string(readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
        let start = text
            .find(&format!("### {section}"))
            .unwrap_or_else(|| panic!("{}: no {section} table", readme.display()));
        text[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("### "))
            .filter_map(|l| l.strip_prefix("| `").and_then(|r| r.split('`').next()))
            .map(str::to_owned)
            .collect()
    };
    let infra = repo_root().join("infra");
    let mut dirs = vec![(
        infra.join("README.md"),
        vec![infra.join("variables.tf")],
        vec![infra.join("outputs.tf")],
    )];
    for e in EXAMPLES {
        let dir = infra.join("examples").join(e);
        dirs.push((
            dir.join("README.md"),
            vec![dir.join("main.tf")],
            vec![dir.join("main.tf")],
        ));
    }
    let member = infra.join("modules/member");
    dirs.push((
        member.join("README.md"),
        vec![member.join("variables.tf")],
        vec![member.join("outputs.tf")],
    ));
    for (readme, vars, outs) in dirs {
        assert_eq!(
            rows(&readme, "Inputs"),
            names(&vars, "variable"),
            "{}: the Inputs table and the variables differ",
            readme.display()
        );
        assert_eq!(
            rows(&readme, "Outputs"),
            names(&outs, "output"),
            "{}: the Outputs table and the outputs differ",
            readme.display()
        );
    }
}

/// IAM, with the module applied once to the seeded demo fleet (its Slack secret given by a
/// partial ARN, as users copy it):
/// - statically: the policies the module rendered, read back from moto's IAM, evaluated by an IAM
///   policy simulator built on AWS's Service Authorization Reference (`@cloud-copilot/iam-simulate`)
///   against every call each function makes, with the resource and condition keys AWS authorises
///   it on (tests/infra/iam_calls.json): every call allowed, calls on other clusters, groups,
///   target groups and secrets denied, and no action granted that no call needs;
/// - by enforcement: each function's real binary run with its own role's credentials and the
///   environment the module gave it, through its main paths (Spot warnings, a rebalance drain, a
///   scale-in drained to its completion, a failed deployment, alarms), against moto with IAM
///   authorization on (tests/infra/iam_enforce.py): nothing is denied.
#[test]
#[ignore = "infra: make test runs it; FLEETGUARD_SKIP_INFRA=1 skips it"]
fn iam_every_call_is_granted_scoped_and_enforced() {
    require_terraform();
    let sim = std::env::var("FLEETGUARD_IAM_SIM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/fleetguard/iam-sim")
        });
    assert!(
        sim.join("node_modules/@cloud-copilot/iam-simulate")
            .exists(),
        "the IAM policy simulator is not installed at {}: run scripts/ensure-tools.sh (needs Node.js and npm)",
        sim.display()
    );
    // The function binaries `cargo test --workspace` built beside this test.
    let bin_dir = function_bin_dir(&[
        "spot-interruption",
        "asg-lifecycle",
        "ecs-deployment",
        "alarm-fanout",
        "instance-maintenance",
    ]);
    let aws = LocalAws::start();
    let fleet = aws.seed();
    let s = |k: &str| fleet[k].as_str().unwrap().to_owned();
    // The secret by a partial ARN: the real one has a random suffix, which IAM must match.
    let secret = s("slack_webhook_secret_arn");
    let partial_secret = &secret[..secret.len() - 7];
    let tmp = infra_copy("iam");
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    moto_override(&root, &aws.moto, "us-east-1");
    let zip = placeholder_zip(&tmp);
    std::fs::write(
        root.join("main.tf"),
        format!(
            r#"module "fleetguard" {{
  source                   = "../infra"
  zip_paths                = {{ for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"] : f => "{zip}" }}
  ecs_cluster_names        = ["{cluster}"]
  auto_scaling_group_names = ["{ecs_group}", "{web_group}"]
  lifecycle_hook_names     = ["{terminate}", "{launch}"]
  target_group_arns        = ["{tg}"]
  slack_webhook_secret_arn = "{secret}"
  rebalance_action         = "drain"
}}
output "roles" {{ value = module.fleetguard.role_names }}
output "topic" {{ value = module.fleetguard.sns_topic_arn }}
output "topic_key" {{ value = module.fleetguard.sns_topic_kms_key_arn }}
output "queue" {{ value = module.fleetguard.failed_events_queue_arn }}
output "table" {{ value = module.fleetguard.dedupe_table_name }}
"#,
            zip = zip.display(),
            cluster = s("cluster"),
            ecs_group = s("ecs_auto_scaling_group"),
            web_group = s("web_auto_scaling_group"),
            terminate = s("terminate_hook"),
            launch = s("launch_hook"),
            tg = s("target_group_arn"),
            secret = partial_secret,
        ),
    )
    .unwrap();
    let data = tmp.join(".tfdata");
    let o = tf(&root, &data, &["init", "-input=false", "-no-color"]);
    assert!(o.status.success(), "init:\n{}", text(&o));
    let o = tf(
        &root,
        &data,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert!(o.status.success(), "apply:\n{}", text(&o));
    let (account, region, prefix) = ("123456789012", "us-east-1", "fleetguard");
    let (cluster, group, tg) = (
        s("cluster"),
        s("ecs_auto_scaling_group"),
        s("target_group_arn"),
    );

    // On a first apply, Lambda checks the on-failure destination against the role's policy and a
    // function may be invoked at once: both wait for the policy (the state records what each
    // resource was created after).
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("terraform.tfstate")).unwrap())
            .unwrap();
    for kind in [
        "aws_lambda_function_event_invoke_config",
        "aws_lambda_function",
    ] {
        let resource = state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == kind && r["name"] == "function")
            .unwrap_or_else(|| panic!("{kind} not in the state"));
        for instance in resource["instances"].as_array().unwrap() {
            assert!(
                instance["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d == "module.fleetguard.aws_iam_role_policy.function"),
                "{kind} {} is not created after the role policy",
                instance["index_key"]
            );
        }
    }
    let o = tf(&root, &data, &["output", "-json"]);
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let value = |k: &str| out[k]["value"].as_str().unwrap().to_owned();
    let roles: BTreeMap<String, String> =
        serde_json::from_value(out["roles"]["value"].clone()).unwrap();
    let role_list = roles.values().cloned().collect::<Vec<_>>().join(",");
    let policies = moto_tool(
        &aws,
        &[
            "policies",
            "--region",
            region,
            "--roles",
            &role_list,
            "--key",
            &value("topic_key"),
        ],
    );

    let fill = |s: &str, function: &str| -> String {
        s.replace("{account}", account)
            .replace("{region}", region)
            .replace("{prefix}", prefix)
            .replace("{function}", function)
            .replace("{cluster}", &cluster)
            .replace("{group}", &group)
            .replace("{tg}", &tg)
            .replace("{secret}", &secret)
            .replace("{topic}", &value("topic"))
            .replace("{topic_key}", &value("topic_key"))
            .replace("{queue}", &value("queue"))
            .replace(
                "{table}",
                &format!(
                    "arn:aws:dynamodb:{region}:{account}:table/{}",
                    value("table")
                ),
            )
    };
    let calls: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/infra/iam_calls.json")).unwrap(),
    )
    .unwrap();
    let policy_of = |function: &str| -> Value {
        let docs = policies[&roles[function]].as_array().unwrap();
        assert_eq!(docs.len(), 1, "{function}: one inline policy");
        docs[0].clone()
    };
    let case = |name: String, function: &str, call: &Value| -> Value {
        let context: serde_json::Map<String, Value> = call["context"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from(fill(v.as_str().unwrap(), function))))
                    .collect()
            })
            .unwrap_or_default();
        let mut c = serde_json::json!({
            "name": name,
            "account": account,
            "policy": policy_of(function),
            "action": call["action"],
            "resource": fill(call["resource"].as_str().unwrap(), function),
            "context": context,
        });
        if call["action"].as_str().unwrap().starts_with("kms:") {
            c["resourcePolicy"] = policies["key_policy"].clone();
        }
        c
    };
    let mut cases = Vec::new();
    let mut expected = BTreeMap::new();
    let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, parts) in calls["functions"].as_object().unwrap() {
        assert!(
            roles.contains_key(function),
            "no role for {function}: {roles:?}"
        );
        for part in parts.as_array().unwrap() {
            let list = match part.as_str() {
                Some(group) => calls[group].as_array().unwrap().clone(),
                None => vec![part.clone()],
            };
            for call in list {
                let name = format!("{function} {} {}", call["action"], call["resource"]);
                needed
                    .entry(function.clone())
                    .or_default()
                    .insert(call["action"].as_str().unwrap().to_owned());
                cases.push(case(name.clone(), function, &call));
                expected.insert(name, "Allowed");
            }
        }
    }
    for call in calls["denied"].as_array().unwrap() {
        let function = call["function"].as_str().unwrap();
        let name = format!("denied: {function} {} {}", call["action"], call["resource"]);
        cases.push(case(name.clone(), function, call));
        expected.insert(name, "ImplicitlyDenied");
    }

    let script = sim.join("simulate.mjs");
    std::fs::copy(
        repo_root().join("tests/infra/iam-sim/simulate.mjs"),
        &script,
    )
    .unwrap();
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(&sim)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::json!({ "cases": cases }).to_string().as_bytes())
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "simulate.mjs:\n{}", text(&o));
    let results: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(results.len(), expected.len());
    let wrong: Vec<String> = results
        .iter()
        .filter(|r| r["result"].as_str() != expected.get(r["name"].as_str().unwrap()).copied())
        .map(|r| format!("{}: {} {}", r["name"], r["result"], r["errors"]))
        .collect();
    assert!(wrong.is_empty(), "IAM:\n{}", wrong.join("\n"));

    // Nothing granted that no call needs.
    for (function, actions) in &needed {
        let policy = policy_of(function);
        for st in policy["Statement"].as_array().unwrap() {
            let granted = match &st["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
                other => panic!("{function}: Action {other}"),
            };
            for a in granted {
                assert!(
                    actions.contains(&a),
                    "{function} is granted {a} ({}), which it never calls",
                    st["Sid"]
                );
            }
        }
    }

    // By enforcement.
    let fleet_file = tmp.join("fleet.json");
    std::fs::write(&fleet_file, fleet.to_string()).unwrap();
    let local =
        serde_json::json!({"moto": aws.moto, "autoscaling": aws.autoscaling, "slack": aws.slack});
    let o = Command::new(python())
        .arg(repo_root().join("tests/infra/iam_enforce.py"))
        .args(["--local", &local.to_string(), "--fleet"])
        .arg(&fleet_file)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--work")
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "iam_enforce.py:\n{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Authorization was on: a role is refused what its policy does not grant.
    assert!(
        report["control"].as_str().unwrap().contains("AccessDenied"),
        "alarm-fanout's role listed ECS clusters: authorization was not on: {report}"
    );
    for (f, r) in report["functions"].as_object().unwrap() {
        assert!(r["invocations"].as_u64().unwrap() >= 3, "{f}: {r}");
        assert_eq!(r["denials"], serde_json::json!([]), "{f} was denied: {r}");
        assert_eq!(r["errors"], serde_json::json!([]), "{f} failed: {r}");
    }
    // The main paths did their work under the roles.
    let (ci0, ci1) = (
        fleet["ecs_instances"][0]["instance_id"].as_str().unwrap(),
        fleet["ecs_instances"][1]["instance_id"].as_str().unwrap(),
    );
    assert_eq!(report["container_instances"][ci0], "DRAINING", "{report}");
    assert_eq!(report["container_instances"][ci1], "DRAINING", "{report}");
    // The rebalance drain wrote its mark (rebalance_action = "drain").
    let ci2 = fleet["ecs_instances"][2]["instance_id"].as_str().unwrap();
    assert_eq!(report["container_instances"][ci2], "DRAINING", "{report}");
    assert!(
        report["drain_marks"][ci2]
            .as_str()
            .is_some_and(|m| m.starts_with("rebalance@")),
        "{report}"
    );
    assert!(
        report["lifecycle"]["completed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["EC2InstanceId"] == ci1),
        "the scale-in's lifecycle action was not completed: {report}"
    );
    assert!(report["slack_posts"].as_u64().unwrap() > 0, "{report}");
    // instance-maintenance under its role: the retirement ten minutes ahead replaced web
    // instance 0 (desired capacity kept); the reboot left its schedule to put web 1 back.
    let web0 = fleet["web_instances"][0].as_str().unwrap();
    let web1 = fleet["web_instances"][1].as_str().unwrap();
    assert_eq!(report["web_group"]["desired"], 2, "{report}");
    assert!(
        !report["web_group"]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == web0),
        "{report}"
    );
    assert!(
        report["schedules"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with(&format!("fleetguard-{web1}-back-"))),
        "{report}"
    );
    // (Whether web 1 left the target group cannot be read here: moto registers every instance
    // of the group again when the replacement launches. tests/tests/instance_maintenance.rs
    // checks the deregistration.)
    assert_eq!(
        report["targets"].as_array().unwrap().len(),
        2,
        "the replacement is registered: {report}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
