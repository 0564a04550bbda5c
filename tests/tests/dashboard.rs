//! The Terraform module's dashboard (`infra/dashboard.json.tftpl`) plots only metrics the
//! functions emit, with the dimensions they emit them with: each function is driven over the
//! in-memory fakes through the paths that emit its fleet metrics, and every (metric, dimension
//! set) a dashboard SEARCH asks for must be among the EMF lines they wrote.

use fleetguard::config::CommonConfig;
use fleetguard::out_of_service::Fleet;
use fleetguard::testing::{FakeAws, FakeClock, FakeNotifier, invoke_observed, sample};
use fleetguard_integration::repo_root;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
const GROUP: &str = "prod-ecs-spot-asg";

/// (metric name, sorted dimension names) of every EMF line.
fn emitted(lines: &[String], into: &mut BTreeSet<(String, Vec<String>)>) {
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for m in d["Metrics"].as_array().unwrap() {
                for dims in d["Dimensions"].as_array().unwrap() {
                    let mut names: Vec<String> = dims
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_owned())
                        .collect();
                    names.sort();
                    into.insert((m["Name"].as_str().unwrap().to_owned(), names));
                }
            }
        }
    }
}

/// (metric name, sorted dimension names) of every SEARCH in the dashboard.
fn plotted() -> BTreeSet<(String, Vec<String>)> {
    plotted_in("infra/dashboard.json.tftpl")
}

fn plotted_in(template: &str) -> BTreeSet<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join(template)).unwrap();
    let body = text
        .replace("${namespace}", "fleetguard")
        .replace("${region}", "us-east-1");
    let v: Value = serde_json::from_str(&body).expect("the dashboard is JSON once rendered");
    let mut out = BTreeSet::new();
    for w in v["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let e = m[0]["expression"].as_str().unwrap();
            // SEARCH('{fleetguard,Dim1,Dim2} MetricName="Name" ...', 'Stat', period)
            let schema = &e[e.find('{').unwrap() + 1..e.find('}').unwrap()];
            let mut parts = schema.split(',');
            assert_eq!(parts.next(), Some("fleetguard"), "{e}");
            let mut dims: Vec<String> = parts.map(str::to_owned).collect();
            dims.sort();
            let name = e.split("MetricName=\"").nth(1).unwrap();
            let name = &name[..name.find('"').unwrap()];
            out.insert((name.to_owned(), dims));
        }
    }
    out
}

#[tokio::test]
async fn every_metric_the_dashboard_plots_is_one_the_functions_emit() {
    let mut seen = BTreeSet::new();
    let now = chrono::Utc::now().timestamp();

    // spot-interruption: a warning, a rebalance recommendation, and a drain that failed.
    let aws = FakeAws::new();
    aws.group("workers", &[], &[]);
    aws.group_instance("workers", INSTANCE, "InService");
    aws.container_instance("prod", INSTANCE, "checkout-api", 2);
    let lookup = fleetguard::config::lookup_in(&[]);
    let spot = spot_interruption::Handler {
        common: CommonConfig::from_lookup(&lookup).unwrap(),
        config: spot_interruption::config::SpotConfig::from_lookup(&lookup).unwrap(),
        fleet: Fleet {
            ecs: aws.clone(),
            elbv2: aws.clone(),
            autoscaling: aws.clone(),
        },
        notifier: FakeNotifier::new(),
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    };
    let (r, lines) = invoke_observed(&spot, &sample("spot/rebalance-recommendation.json")).await;
    r.unwrap();
    emitted(&lines, &mut seen);
    aws.throttle("UpdateContainerInstancesState", 1);
    let (r, lines) = invoke_observed(&spot, &sample("spot/interruption-terminate.json")).await;
    assert!(r.is_err());
    emitted(&lines, &mut seen);

    // instance-maintenance: a scheduled retirement.
    let env = [
        ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/s"),
        (
            "SCHEDULE_TARGET_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
    ];
    let lookup = fleetguard::config::lookup_in(&env);
    let maintenance = instance_maintenance::Handler {
        common: CommonConfig::from_lookup(&lookup).unwrap(),
        config: instance_maintenance::config::MaintenanceConfig::from_lookup(&lookup).unwrap(),
        fleet: Fleet {
            ecs: aws.clone(),
            elbv2: aws.clone(),
            autoscaling: aws.clone(),
        },
        schedules: aws.clone(),
        notifier: FakeNotifier::new(),
        clock: std::sync::Arc::new(FakeClock::at(now)),
    };
    let mut health = sample("maintenance/health-retirement.json");
    health["detail"]["startTime"] = json!(
        chrono::DateTime::from_timestamp(now + 86_400, 0)
            .unwrap()
            .to_rfc2822()
    );
    let (r, lines) = invoke_observed(&maintenance, &health).await;
    r.unwrap();
    emitted(&lines, &mut seen);

    // asg-lifecycle: a drain to completion, a drain forced by the sweep, a launch failure.
    let asg = |aws: &FakeAws| {
        let lookup = fleetguard::config::lookup_in(&[]);
        asg_lifecycle::Handler {
            common: CommonConfig::from_lookup(&lookup).unwrap(),
            lifecycle: asg_lifecycle::Lifecycle {
                fleet: Fleet {
                    ecs: aws.clone(),
                    elbv2: aws.clone(),
                    autoscaling: aws.clone(),
                },
                config: asg_lifecycle::config::LifecycleConfig::from_lookup(lookup).unwrap(),
                dry_run: false,
                clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
                starts: Default::default(),
                notifier: FakeNotifier::new(),
            },
        }
    };
    for (started_ago, stop_tasks, event) in [
        (10, true, "asg/terminate-lifecycle-action.json"),
        (3700, false, "asg/scheduled-sweep.json"),
    ] {
        let aws = FakeAws::new();
        aws.group(GROUP, &[], &[]);
        aws.hook(GROUP, "fleetguard-drain", true, 300, None);
        aws.group_instance(GROUP, INSTANCE, "Terminating:Wait");
        aws.pending_action(GROUP, "fleetguard-drain", INSTANCE, true, now - started_ago);
        aws.container_instance("prod-ecs", INSTANCE, "checkout-api", 2);
        if stop_tasks {
            aws.stop_tasks_of(INSTANCE);
        }
        let h = asg(&aws);
        let (r, lines) = invoke_observed(&h, &sample(event)).await;
        let out = r.unwrap();
        assert!(out.outcome.contains("complete"), "{}", out.outcome);
        emitted(&lines, &mut seen);
    }
    let (r, lines) = invoke_observed(
        &asg(&FakeAws::new()),
        &sample("asg/launch-unsuccessful.json"),
    )
    .await;
    r.unwrap();
    emitted(&lines, &mut seen);

    let plotted = plotted();
    assert!(plotted.len() >= 8, "{plotted:?}");
    let missing: Vec<_> = plotted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "the dashboard plots metrics no function emits: {missing:?}\nemitted: {seen:?}"
    );
    // A hub's views: the same metrics, per account (every line of a hub carries the same
    // dimension set plus `Account`: observe.rs's tests, and organization.rs with the binaries).
    let hub = plotted_in("infra/dashboard_hub.json.tftpl");
    assert_eq!(hub.len(), 3, "{hub:?}");
    for (name, dims) in &hub {
        assert!(dims.iter().any(|d| d == "Account"), "{name}: {dims:?}");
        let base: Vec<String> = dims.iter().filter(|d| *d != "Account").cloned().collect();
        assert!(
            seen.contains(&(name.clone(), base.clone())),
            "a hub's dashboard plots {name} {base:?}, which no function emits"
        );
    }
    // And every fleet metric the functions know is on the dashboard.
    for m in fleetguard::observe::FleetMetric::ALL {
        assert!(
            plotted.iter().any(|(name, _)| name == m.as_str()),
            "{} is not on the dashboard",
            m.as_str()
        );
    }
}
