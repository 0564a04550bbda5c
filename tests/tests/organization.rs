//! Organization-wide: one hub deployment, the real binaries, serving two member accounts and
//! failing a third whose role does not trust it. moto holds every account (assumed-role
//! credentials act in the role's account); STS goes through the trust fake, which refuses an
//! `AssumeRole` the role's trust policy does not allow (moto itself allows every one).

use fleetguard_integration::runtime_api::{Answer, run_binary};
use fleetguard_integration::{LocalAws, dedupe_table, drain_queue, sample, topic_with_queue};
use serde_json::{Value, json};

const HUB: &str = "123456789012";
const A: &str = "111111111111";
const B: &str = "222222222222";
const BROKEN: &str = "333333333333";

struct Org {
    aws: LocalAws,
    seed: Value,
    /// The hub's own SDK configuration (moto's default keys act in the hub account).
    sdk: aws_config::SdkConfig,
    table: String,
}

impl Org {
    async fn new() -> Self {
        let aws = LocalAws::start();
        let seed = aws.seed_organization();
        let sdk = aws.sdk_config().await;
        let table = dedupe_table(&sdk, "fleetguard-hub-dedupe").await;
        Self {
            aws,
            seed,
            sdk,
            table,
        }
    }

    fn account(&self, account: &str) -> &Value {
        if account == HUB {
            &self.seed["hub"]
        } else if account == BROKEN {
            &self.seed["broken"][account]
        } else {
            &self.seed["members"][account]
        }
    }

    fn instance(&self, account: &str, i: usize) -> (String, String) {
        let v = &self.account(account)["instances"][i];
        (
            v["instance_id"].as_str().unwrap().to_owned(),
            v["container_instance_arn"].as_str().unwrap().to_owned(),
        )
    }

    /// The hub's environment, as the module sets it, plus `extra`.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let creds = &self.seed["hub"]["credentials"];
        let mut env: Vec<(String, String)> = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .iter()
        .map(|k| (k.to_string(), creds[*k].as_str().unwrap().to_owned()))
        .collect();
        env.extend([
            ("AWS_ENDPOINT_URL".into(), self.aws.moto.clone()),
            ("AWS_ENDPOINT_URL_STS".into(), self.aws.sts.clone()),
            (
                "AWS_ENDPOINT_URL_AUTO_SCALING".into(),
                self.aws.autoscaling.clone(),
            ),
            ("MEMBER_ACCOUNTS".into(), format!("{A},{B},{BROKEN}")),
            ("HUB_ACCOUNT_ID".into(), HUB.into()),
            (
                "ACCOUNT_NAMES".into(),
                json!({A: "payments-prod", B: "search-prod", BROKEN: "legacy-prod"}).to_string(),
            ),
            ("DEDUPE_TABLE".into(), self.table.clone()),
            (
                "SLACK_WEBHOOK_URL".into(),
                format!("{}/services/T0HUB/B0HUB/hub-webhook", self.aws.slack),
            ),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }

    fn run(
        &self,
        function: &str,
        env: &[(String, String)],
        payloads: Vec<Value>,
    ) -> (Vec<Answer>, String) {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_binary(
            function,
            &env,
            payloads
                .iter()
                .map(|p| p.to_string().into_bytes())
                .collect(),
        )
    }

    /// Clients acting in `account`, for looking (moto lets the test assume any role).
    async fn sdk_in(&self, account: &str) -> aws_config::SdkConfig {
        if account == HUB {
            return self.sdk.clone();
        }
        let role = format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole");
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("test")
            .configure(&self.sdk)
            .build()
            .await;
        self.sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build()
    }

    async fn status(&self, account: &str, i: usize) -> String {
        let (_, ci) = self.instance(account, i);
        let ecs = aws_sdk_ecs::Client::new(&self.sdk_in(account).await);
        let out = ecs
            .describe_container_instances()
            .cluster("fleet")
            .container_instances(&ci)
            .send()
            .await
            .unwrap();
        out.container_instances()[0]
            .status()
            .unwrap_or("")
            .to_owned()
    }

    async fn targets(&self, account: &str) -> Vec<String> {
        let tg = self.account(account)["target_group_arn"].as_str().unwrap();
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk_in(account).await);
        let out = elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    async fn assume_role_calls(&self) -> Vec<Value> {
        let text = reqwest::get(format!("{}/_fake/calls", self.aws.sts))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<Vec<Value>>(&text)
            .unwrap()
            .into_iter()
            .filter(|c| c["action"] == "AssumeRole")
            .collect()
    }

    async fn slack_texts(&self) -> Vec<String> {
        self.aws
            .requests_to("/services/")
            .await
            .iter()
            .map(|r| r["body"].to_string())
            .collect()
    }
}

/// A Spot termination warning for `instance` of `account`, sent now.
fn warning(account: &str, instance: &str) -> Value {
    let mut e = sample("spot/interruption-terminate.json");
    e["account"] = json!(account);
    e["region"] = json!("us-east-1");
    e["id"] = json!(format!("spot-{account}-{instance}"));
    e["detail"]["instance-id"] = json!(instance);
    e["resources"] = json!([format!(
        "arn:aws:ec2:us-east-1:{account}:instance/{instance}"
    )]);
    e["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    e
}

fn answer_json(a: &Answer) -> Value {
    serde_json::from_str(&a.body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_hub_drains_in_the_warned_members_account_only_and_a_member_it_cannot_assume_fails_alone()
{
    let org = Org::new().await;
    let (a0, _) = org.instance(A, 0);
    let (a1, _) = org.instance(A, 1);
    let (b0, _) = org.instance(B, 0);
    let (c0, _) = org.instance(BROKEN, 0);
    let hub_targets = org.targets(HUB).await;
    let b_targets = org.targets(B).await;
    let (answers, stdout) = org.run(
        "spot-interruption",
        &org.env(&[]),
        vec![
            warning(A, &a0),
            warning(BROKEN, &c0),
            warning(B, &b0),
            warning(A, &a1),
        ],
    );
    let kinds: Vec<&str> = answers.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["response", "error", "response", "response"],
        "{answers:#?}"
    );

    // The member it cannot act in: a clear error naming the account and the role.
    let e = answer_json(&answers[1]);
    assert_eq!(e["errorType"], "AssumeRoleFailed", "{e}");
    let msg = e["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("legacy-prod (333333333333)")
            && msg.contains("arn:aws:iam::333333333333:role/fleetguard-member")
            && msg.contains("not authorized to perform: sts:AssumeRole"),
        "{msg}"
    );
    assert_eq!(org.status(BROKEN, 0).await, "ACTIVE");

    // A's warned instances are drained in A; nothing else anywhere.
    assert_eq!(org.status(A, 0).await, "DRAINING");
    assert_eq!(org.status(A, 1).await, "DRAINING");
    assert_eq!(
        org.status(B, 0).await,
        "DRAINING",
        "B is served after the broken member"
    );
    assert_eq!(org.status(B, 1).await, "ACTIVE");
    assert_eq!(org.status(HUB, 0).await, "ACTIVE");
    assert!(
        org.targets(A).await.is_empty(),
        "A's instances are deregistered in A"
    );
    assert_eq!(org.targets(HUB).await, hub_targets);
    let b_left: Vec<String> = b_targets.into_iter().filter(|t| *t != b0).collect();
    assert_eq!(org.targets(B).await, b_left);

    // One AssumeRole per member for both of A's events, named after the function, by the hub's role.
    let calls = org.assume_role_calls().await;
    let to = |account: &str| {
        calls
            .iter()
            .filter(|c| c["role"].as_str().unwrap_or("").contains(account))
            .count()
    };
    assert_eq!((to(A), to(B)), (1, 1), "{calls:#?}");
    assert!(to(BROKEN) >= 1);
    for c in &calls {
        assert_eq!(c["session"], "fleetguard-spot-interruption");
        assert_eq!(
            c["caller"], "arn:aws:iam::123456789012:role/fleetguard-hub",
            "{c}"
        );
    }

    // Messages name the account; the broken one is announced with its role.
    let texts = org.slack_texts().await;
    assert!(
        texts
            .iter()
            .any(|t| t.contains("payments-prod (111111111111)") && t.contains(&a0)),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("search-prod (222222222222)") && t.contains(&b0))
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("cannot act in account 333333333333")
                && t.contains("arn:aws:iam::333333333333:role/fleetguard-member")),
        "{texts:#?}"
    );
    // Metrics carry the account.
    let accounts: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["Account"].as_str().map(str::to_owned))
        .collect();
    assert!(
        accounts.iter().any(|a| a == A) && accounts.iter().any(|a| a == B),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_members_terminate_hook_is_completed_in_that_member() {
    let org = Org::new().await;
    let (b1, _) = org.instance(B, 1);
    let token = "0d3c2b1a-b5e6-4f7a-8899-aabbccddeeff";
    let mut body = json!({"EC2InstanceId": b1, "AutoScalingGroupName": "fleet-asg",
        "LifecycleHookName": "fleetguard-drain", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "LifecycleActionToken": token, "Account": B});
    reqwest::Client::new()
        .post(format!("{}/_fake/lifecycle-actions", org.aws.autoscaling))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    // The same group and hook names exist in A: only B's action is B's.
    let mut event = sample("asg/terminate-lifecycle-action.json");
    event["account"] = json!(B);
    event["region"] = json!("us-east-1");
    event["resources"] = json!([]);
    body.as_object_mut().unwrap().remove("Account");
    body["NotificationMetadata"] = json!("{\"ecs_cluster\": \"fleet\"}");
    event["detail"] = body;
    event["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (answers, _) = org.run("asg-lifecycle", &org.env(&[]), vec![event]);
    assert_eq!(answers[0].kind, "response", "{answers:#?}");
    let done = org.aws.lifecycle_actions().await;
    let completed = done["completed"].as_array().unwrap();
    assert_eq!(completed.len(), 1, "{done}");
    assert_eq!(completed[0]["Account"], B);
    assert_eq!(completed[0]["EC2InstanceId"], b1);
    let completes: Vec<Value> = org
        .aws
        .autoscaling_calls()
        .await
        .into_iter()
        .filter(|c| c["action"] == "CompleteLifecycleAction")
        .collect();
    assert!(
        !completes.is_empty() && completes.iter().all(|c| c["account"] == B),
        "{completes:#?}"
    );
    assert_eq!(org.status(B, 1).await, "DRAINING");
    assert_eq!(org.status(A, 1).await, "ACTIVE");
}

#[tokio::test]
async fn a_members_alarm_reaches_its_accounts_route_with_its_name_and_assumes_nothing() {
    let org = Org::new().await;
    let (topic, queue) = topic_with_queue(&org.sdk, "payments-alarms").await;
    let routes =
        json!([{"name": "payments", "match": {"accounts": [A]}, "sns_topic_arns": [topic]}]);
    let alarm = |account: &str| {
        let mut e = sample("alarms/metric.json");
        e["account"] = json!(account);
        e["id"] = json!(format!("alarm-{account}"));
        e["resources"] = json!([format!(
            "arn:aws:cloudwatch:eu-west-1:{account}:alarm:checkout-api-cpu-high"
        )]);
        e
    };
    let (answers, _) = org.run(
        "alarm-fanout",
        &org.env(&[("NOTIFY_ROUTES", routes.to_string())]),
        vec![alarm(A), alarm(B)],
    );
    assert!(answers.iter().all(|a| a.kind == "response"), "{answers:#?}");
    let sqs = aws_sdk_sqs::Client::new(&org.sdk);
    let published = drain_queue(&sqs, &queue).await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let text = published[0].to_string();
    assert!(text.contains("payments-prod") && text.contains(A), "{text}");
    // Its dedupe and incident keys carry the account: `HighCPU` in two accounts is two incidents.
    assert!(text.contains(&format!("{A}/")), "{text}");
    let slack = org.slack_texts().await;
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert!(
        slack[0].contains("search-prod (222222222222)"),
        "{}",
        slack[0]
    );
    assert!(!slack[0].contains(A));
    // alarm-fanout calls nothing in a member: no role assumed.
    assert!(org.assume_role_calls().await.is_empty());
}
