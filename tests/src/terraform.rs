//! Terraform for the infra tests: `scripts/tf.sh` with a data directory, a copy of `infra/`
//! to work in, the provider pointed at moto, and the moto inventory tool.

use crate::{LocalAws, python, repo_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The examples under `infra/examples`.
pub const EXAMPLES: [&str; 4] = ["ecs-spot", "ec2-alb", "fargate-alarms", "organization"];

/// Terraform is needed; without it the test fails saying how to get it. (`make test` runs these
/// ignored tests; `FLEETGUARD_SKIP_INFRA=1 make test` leaves them out, counted as skipped.)
pub fn require_terraform() {
    assert!(
        Command::new("terraform").arg("version").output().is_ok(),
        "terraform is not installed: the infra checks need Terraform >= 1.5 \
         (https://developer.hashicorp.com/terraform/install), or FLEETGUARD_SKIP_INFRA=1 make test to skip them"
    );
}

pub fn tf(dir: &Path, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(repo_root().join("scripts/tf.sh"))
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_DATA_DIR", data_dir)
        .output()
        .expect("scripts/tf.sh runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn mirror() -> Option<String> {
    let o = Command::new(repo_root().join("scripts/tf.sh"))
        .arg("--mirror")
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

pub fn init(dir: &Path, data_dir: &Path) {
    let o = tf(
        dir,
        data_dir,
        &["init", "-input=false", "-no-color", "-backend=false"],
    );
    if !o.status.success() {
        match mirror() {
            None => panic!(
                "terraform init failed in {} and no local provider mirror was found \
                 (TF_PROVIDER_MIRROR, /opt/tf-plugins, ~/.terraform.d/plugins): without network \
                 access the hashicorp/aws provider cannot be installed, so the module was NOT \
                 validated.\n{}",
                dir.display(),
                text(&o)
            ),
            Some(m) => panic!(
                "terraform init failed in {} with the provider mirror {m}:\n{}",
                dir.display(),
                text(&o)
            ),
        }
    }
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fleetguard-infra-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The provider pointed at moto, credential checks skipped: an override file Terraform merges.
pub fn moto_override(dir: &Path, moto: &str, region: &str) {
    moto_override_aliases(dir, moto, region, &[]);
}

/// [`moto_override`], for a configuration with aliased providers too (each gets the endpoints;
/// its own settings, an `assume_role` say, stay).
pub fn moto_override_aliases(dir: &Path, moto: &str, region: &str, aliases: &[&str]) {
    let endpoints: String = [
        "autoscaling",
        "cloudwatch",
        "cloudwatchlogs",
        "dynamodb",
        "ec2",
        "ecs",
        "elbv2",
        "events",
        "iam",
        "kms",
        "lambda",
        "scheduler",
        "secretsmanager",
        "sns",
        "sqs",
        "sts",
    ]
    .iter()
    .map(|s| format!("    {s} = \"{moto}\"\n"))
    .collect();
    let block = |alias: Option<&str>| {
        let alias = alias
            .map(|a| format!("  alias = \"{a}\"\n"))
            .unwrap_or_default();
        format!(
            "provider \"aws\" {{\n{alias}  region = \"{region}\"\n  access_key = \"testing\"\n  secret_key = \"testing\"\n  skip_credentials_validation = true\n  skip_metadata_api_check = true\n  skip_region_validation = true\n  endpoints {{\n{endpoints}  }}\n}}\n"
        )
    };
    let text: String = std::iter::once(block(None))
        .chain(aliases.iter().map(|a| block(Some(a))))
        .collect();
    std::fs::write(dir.join("moto_override.tf"), text).unwrap();
}

/// A copy of infra/ in a fresh directory, so a test writes nothing into the repository.
pub fn infra_copy(name: &str) -> PathBuf {
    let tmp = tempdir(name);
    let copy = Command::new("cp")
        .args(["-r"])
        .arg(repo_root().join("infra"))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(copy.success());
    for dir in std::iter::once(tmp.join("infra"))
        .chain(EXAMPLES.iter().map(|e| tmp.join("infra/examples").join(e)))
    {
        for junk in [".terraform", ".terraform.lock.hcl", "terraform.tfstate"] {
            let _ = std::fs::remove_dir_all(dir.join(junk));
            let _ = std::fs::remove_file(dir.join(junk));
        }
    }
    tmp
}

/// A placeholder zip standing in for the `make build` outputs (moto stores it, never runs it).
pub fn placeholder_zip(dir: &Path) -> PathBuf {
    let zip = dir.join("bootstrap.zip");
    let o = Command::new(python())
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.writestr('bootstrap', '#!/bin/sh\\n'); z.close()"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    zip
}

pub fn moto_tool(aws: &LocalAws, args: &[&str]) -> Value {
    let o = Command::new(python())
        .arg(repo_root().join("tests/infra/moto_tool.py"))
        .args(args)
        .args(["--moto", &aws.moto])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Where `cargo test --workspace` built the function binaries (beside the running test), each
/// of `functions` checked to be there.
pub fn function_bin_dir(functions: &[&str]) -> PathBuf {
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    for f in functions {
        assert!(
            bin_dir.join(f).exists(),
            "{} is not built: run the tests with `cargo test --workspace` (make test)",
            bin_dir.join(f).display()
        );
    }
    bin_dir
}
