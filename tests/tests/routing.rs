//! Each function's entry acknowledges exactly the events it owns, skips the others with a
//! reason, and rejects malformed input with an error: every sample event through each of the five
//! functions,
//! each handler over the in-memory fakes (an empty account), so the owned events run the
//! function's own paths too.

use fleetguard::config::CommonConfig;
use fleetguard::out_of_service::Fleet;
use fleetguard::serve::Function;
use fleetguard::testing::{FakeAws, FakeNotifier};
use fleetguard_integration::{invoke, repo_root};
use serde_json::Value;

fn manifest() -> serde_json::Map<String, Value> {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/manifest.json")).unwrap(),
    )
    .unwrap()
}

fn fleet() -> Fleet<FakeAws, FakeAws, FakeAws> {
    let aws = FakeAws::new();
    Fleet {
        ecs: aws.clone(),
        elbv2: aws.clone(),
        autoscaling: aws,
    }
}

fn common() -> CommonConfig {
    CommonConfig::from_lookup(&|_| None).unwrap()
}

/// Every sample through `function`; the number of samples checked.
async fn route_every_sample<F: Function>(function: &F) -> usize {
    let dir = repo_root().join("events");
    let mut checked = 0;
    for (name, expect) in &manifest() {
        let Ok(payload) = serde_json::from_slice::<Value>(&std::fs::read(dir.join(name)).unwrap())
        else {
            continue; // not JSON at all: the runtime rejects it before the handler
        };
        let result = invoke(function, &payload).await;
        if expect.get("error").is_some() {
            assert!(result.is_err(), "{name}: {} should reject it", F::NAME);
            checked += 1;
            continue;
        }
        let summary = result.unwrap_or_else(|e| panic!("{name} in {}: {e}", F::NAME));
        assert_eq!(summary.function, F::NAME);
        assert_eq!(summary.kind.as_str(), expect["kind"], "{name}");
        // The manifest names the functions each sample feeds: they must all accept it.
        let fed = expect
            .get("functions")
            .and_then(Value::as_array)
            .is_some_and(|fs| fs.iter().any(|f| f == F::NAME));
        assert!(
            !fed || F::accepts(summary.kind),
            "{name} feeds {} but it does not accept it",
            F::NAME
        );
        if F::accepts(summary.kind) {
            assert!(
                !summary.outcome.contains("is not handled by"),
                "{name} in {}: {}",
                F::NAME,
                summary.outcome
            );
        } else {
            assert!(
                summary.outcome.starts_with("ignored"),
                "{name} in {}: {}",
                F::NAME,
                summary.outcome
            );
        }
        checked += 1;
    }
    checked
}

// Paused time: the functions' waits (drain polls, backoff) cost no wall-clock time.
#[tokio::test(start_paused = true)]
async fn every_function_routes_every_sample_event() {
    let mut checked = 0;
    checked += route_every_sample(&spot_interruption::Handler {
        common: common(),
        config: spot_interruption::config::SpotConfig::from_lookup(|_| None).unwrap(),
        fleet: fleet(),
        notifier: FakeNotifier::new(),
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    })
    .await;
    checked += route_every_sample(&asg_lifecycle::Handler {
        common: common(),
        lifecycle: asg_lifecycle::Lifecycle {
            fleet: fleet(),
            config: asg_lifecycle::config::LifecycleConfig::from_lookup(|_| None).unwrap(),
            dry_run: false,
            clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
            starts: Default::default(),
            notifier: FakeNotifier::new(),
        },
    })
    .await;
    checked += route_every_sample(&ecs_deployment::Handler {
        common: common(),
        config: ecs_deployment::config::DeploymentConfig::from_lookup(|_| None).unwrap(),
        ecs: FakeAws::new(),
        notifier: FakeNotifier::new(),
    })
    .await;
    checked += route_every_sample(&alarm_fanout::Handler {
        common: common(),
        alarms: alarm_fanout::config::AlarmConfig::default(),
        notifier: FakeNotifier::new(),
    })
    .await;
    let lookup = fleetguard::config::lookup_in(&[
        ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/s"),
        (
            "SCHEDULE_TARGET_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
    ]);
    let aws = FakeAws::new();
    checked += route_every_sample(&instance_maintenance::Handler {
        common: common(),
        config: instance_maintenance::config::MaintenanceConfig::from_lookup(&lookup).unwrap(),
        fleet: fleet(),
        schedules: aws,
        notifier: FakeNotifier::new(),
        clock: std::sync::Arc::new(fleetguard::ports::SystemClock),
    })
    .await;
    // Every JSON sample of the manifest, through each of the five functions.
    let dir = repo_root().join("events");
    let samples = manifest()
        .keys()
        .filter(|name| {
            serde_json::from_slice::<Value>(&std::fs::read(dir.join(name)).unwrap()).is_ok()
        })
        .count();
    assert!(samples > 60, "only {samples} samples");
    assert_eq!(checked, 5 * samples);
}
