//! `infra/examples/organization` against moto: a hub and two member accounts applied with
//! aliased providers (each member through an assumed role, as Organizations sets them up), then
//! the hub's IAM and the member role's proven by enforcement (tests/infra/org_enforce.py): the
//! hub's real binaries, with their own roles' credentials and the environment the module gave
//! them, act in member A through the role `infra/modules/member` created there, with moto's IAM
//! authorization on and STS refusing what a trust policy does not allow. Then destroyed.
//!
//! `tests/tests/infra.rs` runs it beside the other examples (their applies mostly wait on the
//! provider's waiters).

use crate::terraform::{
    function_bin_dir, infra_copy, moto_override_aliases, moto_tool, placeholder_zip,
    require_terraform, text, tf,
};
use crate::{LocalAws, python, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const A: &str = "111111111111";
const B: &str = "222222222222";

/// Apply the example, enforce both sides' IAM, destroy it; panics on the first thing wrong.
pub fn the_organization_example_applies_and_both_sides_iam_is_enforced() {
    require_terraform();
    let bin_dir = function_bin_dir(&[
        "spot-interruption",
        "asg-lifecycle",
        "ecs-deployment",
        "alarm-fanout",
    ]);
    let aws = LocalAws::start();
    let tmp = infra_copy("organization");
    let dir = tmp.join("infra/examples/organization");
    moto_override_aliases(&dir, &aws.moto, "eu-west-1", &["member_a", "member_b"]);
    let zip = placeholder_zip(&tmp);
    let net = moto_tool(&aws, &["network"]);
    let vars = json!({
        "member_a_account_id": A, "member_b_account_id": B, "image_id": net["image_id"],
        "zip_paths": {
            "spot-interruption": zip, "asg-lifecycle": zip, "ecs-deployment": zip, "alarm-fanout": zip,
            "instance-maintenance": zip,
        }
    });
    let var_file = tmp.join("organization.tfvars.json");
    std::fs::write(&var_file, vars.to_string()).unwrap();
    let var_arg = format!("-var-file={}", var_file.display());
    let data = tmp.join(".tfdata");
    let o = tf(&dir, &data, &["init", "-input=false", "-no-color"]);
    assert!(o.status.success(), "init:\n{}", text(&o));
    let apply = [
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &var_arg,
    ];
    let o = tf(&dir, &data, &apply);
    assert!(o.status.success(), "apply:\n{}", text(&o));
    let o = tf(&dir, &data, &["output", "-json"]);
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let hub = &out["hub"]["value"];
    assert_eq!(
        hub["event_bus"],
        "arn:aws:events:eu-west-1:123456789012:event-bus/fleetguard-hub"
    );
    assert_eq!(
        out["members"]["value"][A],
        format!("arn:aws:iam::{A}:role/fleetguard-member")
    );
    // The hub's functions live in the hub account only (the inventory reads that account).
    let v = moto_tool(&aws, &["inventory"]);
    let has = |k: &str, name: &str| v[k].as_array().unwrap().iter().any(|x| x == name);
    assert!(has("functions", "fleetguard-spot-interruption"), "{v}");
    assert!(
        !has("roles", "fleetguard-member"),
        "the member role is the member's: {v}"
    );

    let local = json!({"moto": aws.moto, "autoscaling": aws.autoscaling, "sts": aws.sts, "slack": aws.slack});
    let o = Command::new(python())
        .arg(repo_root().join("tests/infra/org_enforce.py"))
        .args(["--local", &local.to_string(), "--member", A, "--bin-dir"])
        .arg(&bin_dir)
        .arg("--work")
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "org_enforce.py:\n{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Authorization was on, and trust is the member role's own.
    assert!(
        report["control"].as_str().unwrap().contains("AccessDenied"),
        "{report}"
    );
    assert!(
        report["control_trust"]
            .as_str()
            .unwrap()
            .contains("not authorized to perform: sts:AssumeRole"),
        "alarm-fanout's role assumed the member role: {report}"
    );
    for (f, r) in report["functions"].as_object().unwrap() {
        assert_eq!(r["denials"], json!([]), "{f} was denied: {r}");
        assert_eq!(r["errors"], json!([]), "{f} failed: {r}");
    }
    // The work was done in member A, under the member role.
    let instances = report["instances"].as_array().unwrap();
    for i in instances {
        assert_eq!(
            report["container_instances"][i.as_str().unwrap()],
            "DRAINING",
            "{report}"
        );
    }
    let completed = report["lifecycle"]["completed"].as_array().unwrap();
    assert!(
        completed
            .iter()
            .any(|c| c["EC2InstanceId"] == instances[1] && c["Account"] == A),
        "the scale-in was completed in A: {report}"
    );
    let callers: Vec<&str> = report["assume_role"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["session"] != "control")
        .map(|c| c["caller"].as_str().unwrap())
        .collect();
    for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment"] {
        let role = report["hub_roles"][f].as_str().unwrap();
        assert!(
            callers.contains(&role),
            "{f} did not assume the member role: {report}"
        );
    }

    let destroy = [
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &var_arg,
    ];
    let o = tf(&dir, &data, &destroy);
    assert!(o.status.success(), "destroy:\n{}", text(&o));
    let v = moto_tool(&aws, &["inventory"]);
    for kind in ["functions", "rules", "queues", "tables", "roles"] {
        assert!(
            v[kind].as_array().unwrap().is_empty(),
            "{kind} left after destroy: {v}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
