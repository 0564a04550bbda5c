//! Where one function's drain meets another's undo (issue 23, situations 1–3 and 6): the real
//! `spot-interruption`, `instance-maintenance` and `asg-lifecycle` handlers over one in-memory
//! AWS that answers ECS's attribute calls as ECS documents (10 custom attributes at most).

use fleetguard::config::CommonConfig;
use fleetguard::kept_marks::{MarkLedger, Marked};
use fleetguard::out_of_service::Fleet;
use fleetguard::ports::{Clock, DRAIN_MARK_ATTRIBUTE, DrainMark, DrainReason};
use fleetguard::testing::{FakeAws, FakeClock, FakeNotifier, invoke, sample};
use serde_json::{Value, json};
use std::sync::Arc;

const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
const NOW: i64 = 1_800_000_000;

/// ECS as the functions are wired: marks kept in the table as well.
type Ecs = Marked<FakeAws, FakeNotifier>;
type Spot = spot_interruption::Handler<Ecs, FakeAws, FakeAws, FakeNotifier>;
type Asg = asg_lifecycle::Handler<Ecs, FakeAws, FakeAws, FakeNotifier>;
type Maintenance = instance_maintenance::Handler<Ecs, FakeAws, FakeAws, FakeAws, FakeNotifier>;

struct World {
    aws: FakeAws,
    clock: FakeClock,
    notifier: FakeNotifier,
}

impl World {
    /// An instance in service in group `workers`, with a container instance running two tasks.
    fn new() -> Self {
        let aws = FakeAws::new();
        aws.group("workers", &[], &[]);
        aws.group_instance("workers", INSTANCE, "InService");
        aws.container_instance("prod", INSTANCE, "checkout-api", 2);
        let clock = FakeClock::at(NOW);
        let notifier = FakeNotifier::on_clock({
            let c = clock.clone();
            move || Clock::now(&c)
        });
        Self {
            aws,
            clock,
            notifier,
        }
    }

    fn fleet(&self) -> Fleet<Ecs, FakeAws, FakeAws> {
        Fleet {
            ecs: Marked::new(self.aws.clone(), self.notifier.clone()),
            elbv2: self.aws.clone(),
            autoscaling: self.aws.clone(),
        }
    }

    fn spot(&self, env: &[(&str, &str)]) -> Spot {
        let lookup = fleetguard::config::lookup_in(env);
        spot_interruption::Handler {
            common: CommonConfig::from_lookup(&lookup).unwrap(),
            config: spot_interruption::config::SpotConfig::from_lookup(&lookup).unwrap(),
            fleet: self.fleet(),
            notifier: self.notifier.clone(),
            clock: Arc::new(self.clock.clone()),
        }
    }

    fn asg(&self, env: &[(&str, &str)]) -> Asg {
        let lookup = fleetguard::config::lookup_in(env);
        asg_lifecycle::Handler {
            common: CommonConfig::from_lookup(&lookup).unwrap(),
            lifecycle: asg_lifecycle::Lifecycle {
                fleet: self.fleet(),
                config: asg_lifecycle::config::LifecycleConfig::from_lookup(lookup).unwrap(),
                dry_run: false,
                clock: Arc::new(self.clock.clone()),
                starts: Default::default(),
                notifier: self.notifier.clone(),
            },
        }
    }

    fn maintenance(&self) -> Maintenance {
        self.maintenance_with(&[])
    }

    fn maintenance_with(&self, env: &[(&str, &str)]) -> Maintenance {
        let mut all = env.to_vec();
        all.extend([
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/s"),
            (
                "SCHEDULE_TARGET_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:f",
            ),
        ]);
        let lookup = fleetguard::config::lookup_in(&all);
        instance_maintenance::Handler {
            common: CommonConfig::from_lookup(&lookup).unwrap(),
            config: instance_maintenance::config::MaintenanceConfig::from_lookup(&lookup).unwrap(),
            fleet: self.fleet(),
            schedules: self.aws.clone(),
            notifier: self.notifier.clone(),
            clock: Arc::new(self.clock.clone()),
        }
    }

    fn status(&self) -> (String, Option<DrainMark>) {
        let w = self.aws.world();
        let ci = &w.container_instances[0];
        (ci.status.clone(), ci.drain_mark)
    }

    /// What ECS sends when the container instance changes, as it is now.
    fn container_instance_event(&self) -> Value {
        let ci = self.aws.world().container_instances[0].clone();
        json!({
            "version": "0", "id": format!("ci-{}", self.clock.now()),
            "detail-type": "ECS Container Instance State Change", "source": "aws.ecs",
            "account": "123456789012", "region": "us-east-1",
            "time": rfc3339(self.clock.now()), "resources": [ci.arn],
            "detail": {
                "clusterArn": ci.cluster_arn, "containerInstanceArn": ci.arn,
                "ec2InstanceId": ci.ec2_instance_id, "status": ci.status,
                "agentConnected": ci.agent_connected,
                "runningTasksCount": ci.running_tasks_count,
                "pendingTasksCount": ci.pending_tasks_count, "version": self.clock.now(),
                "attributes": ci.drain_mark.map(|m| vec![json!({"name": DRAIN_MARK_ATTRIBUTE, "value": m.value()})]).unwrap_or_default(),
                "registeredResources": [], "remainingResources": [],
                "registeredAt": rfc3339(NOW - 86_400), "updatedAt": rfc3339(self.clock.now()),
            }
        })
    }

    /// Every way `asg-lifecycle` may undo a drain, now: the ECS event and the sweep.
    async fn asg_looks(&self, asg: &Asg) {
        invoke(asg, &self.container_instance_event()).await.unwrap();
        let mut sweep = sample("asg/scheduled-sweep.json");
        sweep["time"] = json!(rfc3339(self.clock.now()));
        invoke(asg, &sweep).await.unwrap();
    }

    /// The instance stopped and started again: its tasks are gone, its agent back.
    fn stopped_and_started(&self) {
        self.aws.stop_tasks_of(INSTANCE);
    }
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339()
}

/// A sample event at `t`, about this world's instance.
fn event_at(file: &str, t: i64) -> Value {
    let mut e = sample(file);
    e["time"] = json!(rfc3339(t));
    if e["detail"].get("instance-id").is_some() {
        e["detail"]["instance-id"] = json!(INSTANCE);
    }
    e
}

/// Situation 1: a retirement's drain was undone by asg-lifecycle 300 s later (its mark said
/// "stopped, now"), with the retirement 18 minutes away. It is held to the window's end.
#[tokio::test]
async fn a_maintenance_drain_is_not_undone_before_its_window_is_over() {
    let w = World::new();
    let start = NOW + 18 * 60;
    let mut health = event_at("maintenance/health-retirement.json", NOW);
    health["detail"]["startTime"] = json!(
        chrono::DateTime::from_timestamp(start, 0)
            .unwrap()
            .to_rfc2822()
    );
    health["detail"].as_object_mut().unwrap().remove("endTime");
    invoke(&w.maintenance(), &health).await.unwrap();
    assert_eq!(w.status().0, "DRAINING");
    let asg = w.asg(&[]);
    // Tasks gone (drained), agent still connected: five, ten, fifteen minutes later.
    w.aws.stop_tasks_of(INSTANCE);
    for after in [300, 600, 900, 17 * 60] {
        w.clock.set(NOW + after);
        w.asg_looks(&asg).await;
        assert_eq!(w.status().0, "DRAINING", "{after} s after the drain");
    }
    assert!(w.aws.world().activated.is_empty());
    // The window over (no end given: two hours) and the instance back: undone.
    w.clock.set(start + 7200 + 60);
    w.stopped_and_started();
    w.asg_looks(&asg).await;
    assert_eq!(w.status(), ("ACTIVE".into(), None));
}

/// Situation 2: a rebalance drain, then an interruption warning for the same instance. The
/// warning's mark replaces the rebalance one, so `REBALANCE_UNDO_SECONDS` running out inside
/// the two minutes undoes nothing.
#[tokio::test]
async fn an_interruption_after_a_rebalance_drain_is_never_undone() {
    let w = World::new();
    let spot = w.spot(&[("REBALANCE_ACTION", "drain")]);
    invoke(&spot, &event_at("spot/rebalance-recommendation.json", NOW))
        .await
        .unwrap();
    assert_eq!(
        w.status(),
        (
            "DRAINING".into(),
            Some(DrainMark {
                reason: DrainReason::Rebalance,
                at: NOW
            })
        )
    );
    w.clock.set(NOW + 500);
    invoke(
        &spot,
        &event_at("spot/interruption-terminate.json", NOW + 500),
    )
    .await
    .unwrap();
    assert_eq!(
        w.status().1.map(|m| m.reason),
        Some(DrainReason::Interruption)
    );
    // The rebalance hold (600 s) runs out 100 s into the two minutes; and long after.
    let asg = w.asg(&[("REBALANCE_UNDO_SECONDS", "600")]);
    for t in [NOW + 601, NOW + 619, NOW + 3600] {
        w.clock.set(t);
        w.asg_looks(&asg).await;
        assert_eq!(w.status().0, "DRAINING", "at +{}", t - NOW);
    }
    assert!(w.aws.world().activated.is_empty());
    // A rebalance recommendation after the warning does not weaken it.
    invoke(
        &spot,
        &event_at("spot/rebalance-recommendation.json", NOW + 3600),
    )
    .await
    .unwrap();
    assert_eq!(
        w.status().1.map(|m| m.reason),
        Some(DrainReason::Interruption)
    );
}

/// A terminate warning on an instance fleetguard never drained writes no mark: nothing is to
/// be undone, and the two minutes are not spent on an attribute call.
#[tokio::test]
async fn a_terminate_warning_alone_costs_no_attribute_call() {
    let w = World::new();
    invoke(
        &w.spot(&[]),
        &event_at("spot/interruption-terminate.json", NOW),
    )
    .await
    .unwrap();
    assert_eq!(w.status(), ("DRAINING".into(), None));
    assert_eq!(w.aws.calls_of("PutAttributes"), 0);
}

/// Situation 3: at ECS's 10 custom attributes, a drain that writes its mark was refused, and
/// the instance stayed ACTIVE through its stop. It drains, its mark is kept in the table, and
/// the drain is undone once the instance is back.
#[tokio::test]
async fn a_drain_at_the_attribute_limit_is_marked_in_the_table_and_undone() {
    for (file, reason) in [
        ("spot/interruption-stop.json", DrainReason::SpotStop),
        (
            "spot/interruption-hibernate.json",
            DrainReason::SpotHibernate,
        ),
        ("spot/rebalance-recommendation.json", DrainReason::Rebalance),
    ] {
        let w = World::new();
        let arn = w.aws.world().container_instances[0].arn.clone();
        w.aws.world().custom_attributes.insert(arn, 10);
        let out = invoke(
            &w.spot(&[("REBALANCE_ACTION", "drain")]),
            &event_at(file, NOW),
        )
        .await
        .unwrap();
        assert_eq!(w.status(), ("DRAINING".into(), None), "{file}");
        assert!(
            !out.actions.iter().any(|a| a.contains("unmarked")),
            "{file}: {:?}",
            out.actions
        );
        assert_eq!(
            w.notifier.kept_mark(INSTANCE).await.map(|k| k.mark.reason),
            Some(reason),
            "{file}"
        );
        // Back (stopped and started, or the rebalance hold over): undone by the sweep.
        w.clock.set(NOW + 3600);
        w.stopped_and_started();
        w.asg_looks(&w.asg(&[])).await;
        assert_eq!(w.status(), ("ACTIVE".into(), None), "{file}");
        assert!(w.notifier.kept_mark(INSTANCE).await.is_none(), "{file}");
    }
}

#[tokio::test]
async fn a_maintenance_drain_at_the_attribute_limit_is_marked_in_the_table() {
    let w = World::new();
    let arn = w.aws.world().container_instances[0].arn.clone();
    w.aws.world().custom_attributes.insert(arn, 10);
    let out = invoke(
        &w.maintenance(),
        &event_at("maintenance/instance-stopping.json", NOW),
    )
    .await
    .unwrap();
    assert_eq!(w.status(), ("DRAINING".into(), None));
    assert!(
        !out.actions.iter().any(|a| a.contains("unmarked")),
        "{:?}",
        out.actions
    );
    assert_eq!(
        w.notifier.kept_mark(INSTANCE).await.map(|k| k.mark.reason),
        Some(DrainReason::Stopped)
    );
}

/// Situation 6: the sweep undid a drain whose instance still ran tasks (it never went).
#[tokio::test]
async fn the_sweep_never_undoes_a_stop_drain_of_an_instance_still_running_tasks() {
    let w = World::new();
    invoke(&w.spot(&[]), &event_at("spot/interruption-stop.json", NOW))
        .await
        .unwrap();
    assert_eq!(w.status().1.map(|m| m.reason), Some(DrainReason::SpotStop));
    let asg = w.asg(&[]);
    w.clock.set(NOW + 900);
    let mut sweep = sample("asg/scheduled-sweep.json");
    sweep["time"] = json!(rfc3339(NOW + 900));
    invoke(&asg, &sweep).await.unwrap();
    assert_eq!(
        w.status().0,
        "DRAINING",
        "two tasks still run: it never stopped"
    );
    // Stopped and started again: undone.
    w.stopped_and_started();
    invoke(&asg, &sweep).await.unwrap();
    assert_eq!(w.status(), ("ACTIVE".into(), None));
}

/// A mark whose call failed (throttled past the SDK's retries) never holds the drain back; it
/// is tried again once the drain is made, and kept in the table when that fails too.
#[tokio::test]
async fn a_failed_mark_never_holds_the_drain_back() {
    let w = World::new();
    w.aws.throttle("PutAttributes", 1);
    invoke(&w.spot(&[]), &event_at("spot/interruption-stop.json", NOW))
        .await
        .unwrap();
    assert_eq!(w.status().0, "DRAINING");
    assert_eq!(w.status().1.map(|m| m.reason), Some(DrainReason::SpotStop));

    let w = World::new();
    w.aws.throttle("PutAttributes", 2);
    let out = invoke(&w.spot(&[]), &event_at("spot/interruption-stop.json", NOW))
        .await
        .unwrap();
    assert_eq!(w.status(), ("DRAINING".into(), None));
    assert!(
        out.actions.iter().any(|a| a.ends_with("DRAINING")),
        "{:?}",
        out.actions
    );
    assert_eq!(
        w.notifier.kept_mark(INSTANCE).await.map(|k| k.mark.reason),
        Some(DrainReason::SpotStop)
    );
}

/// Seed 1115 of the fleet simulator, as a scenario: a scheduled stop's due step drains while
/// `PutAttributes` is down (both tries) and its message fails; Lambda's retry finds the instance
/// DRAINING. The kept mark still undoes the drain once the window is over and it runs again.
#[tokio::test]
async fn a_maintenance_drain_whose_mark_ecs_lost_is_undone_after_the_window() {
    let w = World::new();
    w.aws.throttle("PutAttributes", 1_000);
    let start = NOW + 600;
    let mut health = event_at("maintenance/health-instance-stop.json", NOW);
    health["detail"]["startTime"] = json!(
        chrono::DateTime::from_timestamp(start, 0)
            .unwrap()
            .to_rfc2822()
    );
    health["detail"].as_object_mut().unwrap().remove("endTime");
    w.clock.set(start - 60);
    let m = w.maintenance();
    let first = invoke(&m, &health).await;
    let retry = invoke(&m, &health).await;
    assert_eq!(
        w.status(),
        ("DRAINING".into(), None),
        "{first:?} / {retry:?}"
    );
    w.aws.world().failures.clear();
    let asg = w.asg(&[]);
    w.aws.stop_tasks_of(INSTANCE);
    w.clock.set(start + 600);
    w.asg_looks(&asg).await;
    assert_eq!(w.status().0, "DRAINING", "the window is not over");
    w.clock.set(start + 7200 + 60);
    w.asg_looks(&asg).await;
    assert_eq!(w.status(), ("ACTIVE".into(), None));
}

/// "Where the mark lives" for plain EC2 (no container instance): a stop's deregistration, by
/// spot-interruption or by instance-maintenance, is kept in the table with its registrations
/// and put back by instance-maintenance when EC2 reports the instance running again.
#[tokio::test]
async fn a_plain_instances_stop_drain_is_put_back_when_it_runs_again() {
    for stop in [
        "spot/interruption-stop.json",
        "maintenance/instance-stopping.json",
    ] {
        let w = World::new();
        let tg = w.aws.target("web", PLAIN, 80);
        let env = [("TARGET_GROUP_ARNS", tg.as_str())];
        let mut e = event_at(stop, NOW);
        e["detail"]["instance-id"] = json!(PLAIN);
        if stop.starts_with("spot/") {
            invoke(&w.spot(&env), &e).await.unwrap();
        } else {
            invoke(&w.maintenance_with(&env), &e).await.unwrap();
        }
        let registered = |w: &World| {
            w.aws.world().targets[&tg]
                .iter()
                .any(|(i, r)| i == PLAIN && r.state != "draining")
        };
        assert!(!registered(&w), "{stop}: deregistered");
        let kept = w.notifier.kept_mark(PLAIN).await.expect("kept");
        assert_eq!(kept.registrations.len(), 1, "{stop}");
        assert_eq!(kept.registrations[0].port, Some(80), "{stop}");
        let running = |t: i64| {
            let mut e = event_at("maintenance/instance-running.json", t);
            e["detail"]["instance-id"] = json!(PLAIN);
            e
        };
        let m = w.maintenance_with(&env);
        // A "running" from before the stop, delivered late, puts nothing back.
        let out = invoke(&m, &running(NOW - 60)).await.unwrap();
        assert!(out.outcome.contains("not over"), "{stop}: {}", out.outcome);
        assert!(!registered(&w), "{stop}");
        let out = invoke(&m, &running(NOW + 900)).await.unwrap();
        assert!(out.outcome.contains("is back"), "{stop}: {}", out.outcome);
        assert!(registered(&w), "{stop}: registered again");
        assert!(w.notifier.kept_mark(PLAIN).await.is_none(), "{stop}");
        let back: Vec<_> = w
            .notifier
            .sent()
            .into_iter()
            .filter(|n| n.title.contains("is back in service"))
            .collect();
        assert_eq!(back.len(), 1, "{stop}: the drain's incident is resolved");
        assert_eq!(
            back[0].incident.as_ref().map(|i| i.key.as_str()),
            Some(format!("drain|{PLAIN}").as_str())
        );
        // Once put back, a later start changes nothing.
        let out = invoke(&m, &running(NOW + 2000)).await.unwrap();
        assert!(
            out.outcome.contains("nothing of ours"),
            "{stop}: {}",
            out.outcome
        );
    }
}

/// A plain instance (no container instance) in target group `web`, and the environment that
/// names it.
fn plain_world() -> (World, String) {
    let w = World::new();
    let tg = w.aws.target("web", PLAIN, 80);
    (w, tg)
}

const PLAIN: &str = "i-0fedcba9876543210";

fn plain_registered(w: &World, tg: &str) -> bool {
    w.aws.world().targets[tg]
        .iter()
        .any(|(i, r)| i == PLAIN && r.state != "draining")
}

fn about_plain(file: &str, t: i64) -> Value {
    let mut e = event_at(file, t);
    e["detail"]["instance-id"] = json!(PLAIN);
    e
}

async fn sweep_at(w: &World, asg: &Asg, t: i64) {
    // Only every fifth minute's sweep looks for drains to undo.
    assert!(asg_lifecycle::undo::undo_pass_due(t));
    w.clock.set(t);
    let mut sweep = sample("asg/scheduled-sweep.json");
    sweep["time"] = json!(rfc3339(t));
    invoke(asg, &sweep).await.unwrap();
}

/// A rebalance drain of a plain instance: no event ends it, so the sweep registers it again
/// once `REBALANCE_UNDO_SECONDS` passed; unless an interruption warning followed (found in no
/// target group, since the drain deregistered it): then it stays out, before the reclaim and
/// after. Before the fix, nothing put it back, and nothing told it apart from a warning.
#[tokio::test]
async fn a_plain_instances_rebalance_drain_is_put_back_by_the_sweep_unless_a_warning_followed() {
    for warned in [false, true] {
        let (w, tg) = plain_world();
        let env = [
            ("TARGET_GROUP_ARNS", tg.as_str()),
            ("REBALANCE_ACTION", "drain"),
            ("REBALANCE_UNDO_SECONDS", "600"),
        ];
        let spot = w.spot(&env);
        invoke(
            &spot,
            &about_plain("spot/rebalance-recommendation.json", NOW),
        )
        .await
        .unwrap();
        assert!(!plain_registered(&w, &tg), "deregistered");
        let asg = w.asg(&env);
        sweep_at(&w, &asg, NOW + 300).await;
        assert!(
            !plain_registered(&w, &tg),
            "held for REBALANCE_UNDO_SECONDS"
        );
        if warned {
            w.clock.set(NOW + 500);
            let out = invoke(
                &spot,
                &about_plain("spot/interruption-terminate.json", NOW + 500),
            )
            .await
            .unwrap();
            assert!(
                out.outcome.contains("stays out of service"),
                "{}",
                out.outcome
            );
            let kept = w.notifier.kept_mark(PLAIN).await.expect("kept");
            assert_eq!(kept.mark.reason, DrainReason::Interruption);
            for t in [NOW + 600, NOW + 3600] {
                sweep_at(&w, &asg, t).await;
                assert!(
                    !plain_registered(&w, &tg),
                    "warned: never back (+{})",
                    t - NOW
                );
            }
        } else {
            sweep_at(&w, &asg, NOW + 600).await;
            assert!(plain_registered(&w, &tg), "registered again");
            assert!(w.notifier.kept_mark(PLAIN).await.is_none());
            let back = w
                .notifier
                .sent()
                .into_iter()
                .filter(|n| n.title.contains("is back in service"))
                .count();
            assert_eq!(back, 1, "one message resolves the drain's incident");
        }
    }
}

/// A stopped plain instance whose `running` never arrived: the sweep's backstop registers it
/// again `PLAIN_BACKSTOP_SECS` after the stop (harmless while it is still stopped: ELB keeps
/// a stopped target `unused`). One that was terminated meanwhile is let go.
#[tokio::test]
async fn a_plain_instance_whose_running_was_lost_is_put_back_by_the_sweep() {
    use fleetguard::reasons::PLAIN_BACKSTOP_SECS;
    for terminated in [false, true] {
        let (w, tg) = plain_world();
        let env = [("TARGET_GROUP_ARNS", tg.as_str())];
        invoke(
            &w.maintenance_with(&env),
            &about_plain("maintenance/instance-stopping.json", NOW),
        )
        .await
        .unwrap();
        assert!(!plain_registered(&w, &tg), "deregistered");
        if terminated {
            w.aws.world().terminated.insert(PLAIN.to_owned());
        }
        let asg = w.asg(&env);
        sweep_at(&w, &asg, NOW + PLAIN_BACKSTOP_SECS - 300).await;
        assert!(!plain_registered(&w, &tg), "its `running` is waited for");
        sweep_at(&w, &asg, NOW + PLAIN_BACKSTOP_SECS).await;
        assert_eq!(plain_registered(&w, &tg), !terminated);
        assert!(w.notifier.kept_mark(PLAIN).await.is_none(), "mark dropped");
    }
}
