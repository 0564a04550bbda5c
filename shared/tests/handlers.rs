//! Each function's entry acknowledges exactly the events it owns, skips the others with a
//! reason, and rejects malformed input with an error: driven by the sample events.

use fleetguard::alarm_fanout::AlarmConfig;
use fleetguard::aws::Clients;
use fleetguard::config::CommonConfig;
use fleetguard::notify::{Deadline, Notifier};
use fleetguard::{Context, Function};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn every_function_routes_every_sample_event() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for function in Function::ALL {
        let ctx = Context {
            function,
            config: CommonConfig::from_lookup(&|_| None).unwrap(),
            clients: Clients::default(),
            notifier: Notifier::disabled(),
            alarms: AlarmConfig::default(),
            spot: None,
            lifecycle: None,
            deployment: None,
        };
        for (name, expect) in &manifest {
            let Ok(payload) =
                serde_json::from_slice::<Value>(&std::fs::read(dir.join(name)).unwrap())
            else {
                continue; // not JSON at all: the runtime rejects it before the handler
            };
            // spot-interruption, asg-lifecycle and ecs-deployment call AWS for their own
            // events: the integration tests cover those.
            if matches!(
                function,
                Function::SpotInterruption | Function::AsgLifecycle | Function::EcsDeployment
            ) && fleetguard::parse_value(&payload).is_ok_and(|e| function.accepts(e.kind()))
            {
                continue;
            }
            let result = fleetguard::function::handle(
                &ctx,
                &payload,
                Deadline::after(Duration::from_secs(30)),
            )
            .await;
            if expect.get("error").is_some() {
                assert!(
                    result.is_err(),
                    "{name}: {} should reject it",
                    function.name()
                );
                continue;
            }
            let summary = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(summary.function, function.name());
            assert_eq!(summary.kind.as_str(), expect["kind"]);
            // The manifest names the functions each sample feeds: they must all accept it.
            let fed = expect
                .get("functions")
                .and_then(Value::as_array)
                .is_some_and(|fs| fs.iter().any(|f| f == function.name()));
            assert!(
                !fed || function.accepts(summary.kind),
                "{name} feeds {} but it does not accept it",
                function.name()
            );
            if function.accepts(summary.kind) {
                assert!(
                    !summary.outcome.contains("is not handled by"),
                    "{name} in {}: {}",
                    function.name(),
                    summary.outcome
                );
            } else {
                assert!(
                    summary.outcome.starts_with("ignored"),
                    "{name} in {}: {}",
                    function.name(),
                    summary.outcome
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} checks ran");
}
