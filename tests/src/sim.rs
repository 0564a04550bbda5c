//! A deterministic fleet simulator: the real handlers of all five functions, driven through
//! their ports against a model of AWS's semantics on a virtual clock, over one in-memory table
//! (where drain marks are kept too: `kept_marks`) and one set of destinations.
//!
//! Files: the world of a seed (`sim_world.rs`), one event applied (`sim_step.rs`), invoking the
//! functions under faults (`sim_invoke.rs`), the checks (`sim_checks.rs`), Spot stories and stops
//! without notice (`sim_spot.rs`), maintenance stories (`sim_maintenance.rs`), ecs-deployment and
//! alarm-fanout (`sim_seams.rs`).
//!
//! What it models, per seed:
//! - Auto Scaling: groups scaling in at random times; our terminate hook with a heartbeat timeout
//!   (600 s, the module's least, to an hour), its global limit min(48 h, 100 × timeout), and expiry applying the
//!   default result (the instance terminates whatever runs on it); other tools' hooks on the same
//!   groups, which those tools complete themselves; an instance terminates once every pending
//!   action of it is completed or expired. Completion by token or instance id. In half the
//!   seeds one group has a warm pool with `ReuseOnScaleIn`: its instances scale in to
//!   `Warmed:Pending:Wait` under our terminate hook, are stopped in the pool, and come back
//!   later through `Pending:Wait` under our launch hook. In 30% of the seeds g1 also carries ECS
//!   managed draining's hook: ECS sets its instances DRAINING and completes that hook once empty.
//!   g2 carries another tool's terminate hook only.
//! - ELBv2: instances registered in the group's target group; a deregistered target stays
//!   `draining` for the group's deregistration delay (0 to 5 minutes).
//! - ECS: container instances whose tasks stop some time after DRAINING (seconds to hours, some
//!   past `MAX_DRAIN_SECONDS`), each stop emitting task and container-instance events; in some
//!   seeds part of the fleet is in a cluster created after the functions read the account's
//!   cluster list, which still names a cluster deleted since.
//! - EventBridge: each event delayed, dropped, duplicated (so reordered); the minute sweep late by
//!   up to 45 s, and now and then not run (never three in a row).
//! - Lambda: an invocation that fails is retried twice (after one and two minutes, as async
//!   invocations are), then dropped to the on-failure destination; duplicates now and then run
//!   concurrently, their calls interleaved; now and then an invocation times out part-way
//!   (stopped between two calls, whatever it was doing) and is retried.
//! - Failures: throttling on any of 17 AWS calls (past the SDK's retries); now and then one API
//!   down for 90 to 150 s, across Lambda's retries; notification outages; one container
//!   instance at ECS's 10-custom-attribute limit in a quarter of the seeds.
//! - Lambda recycles execution environments now and then (what lived only in memory is gone).
//! - `MAX_DRAIN_SECONDS` from 600 s to 10 hours (AWS's global limit binds), tasks up to 5.5 h.
//! - Spot stories (`sim_spot.rs`): instances outside the scale-in that get rebalance
//!   recommendations (`REBALANCE_ACTION` drain or notify, `REBALANCE_UNDO_SECONDS` 300 to
//!   1800 s), followed or not by a terminate warning, or stop and hibernate warnings, through
//!   EventBridge to the real `spot-interruption`; AWS reclaims or stops them two minutes after
//!   the warning and starts stopped ones again. Instances stopped without notice (EC2's
//!   `stopping` to `instance-maintenance`) and started again. A third of these instances are
//!   plain EC2 (a target, no container instance): reclaimed ones can never be registered again
//!   (`InvalidTarget`); one whose `running` is lost waits for the sweep's backstop.
//! - Maintenance stories (`sim_maintenance.rs`): AWS Health scheduled reboots, stops and
//!   retirements through EventBridge to the real `instance-maintenance` (`MAINTENANCE_ACTION`
//!   drain or replace), updates from before the close delivered after it, EventBridge
//!   Scheduler's one-time schedules fired asynchronously, AWS taking the instance at the window
//!   and starting it again; a replaced instance scales in through its group.
//! - `ecs-deployment` gets every task stop a drain causes; `alarm-fanout` a CloudWatch alarm
//!   that follows the fleet (`sim_seams.rs`).
//!
//! The invariants, checked as time passes and at the end:
//! - no instance terminates (or stops in the warm pool) while one of its tasks is not STOPPED
//!   or a target is still registered, unless its drain was forced after `MAX_DRAIN_SECONDS` and
//!   a "forced" message was delivered;
//! - no hook of ours expires (we force before the global limit; heartbeats land in time);
//! - every action of ours is completed; hooks not ours are never completed nor heartbeated;
//! - every drain that had work ends in a "drained" or "forced" message, and exactly one such
//!   message lands (copies counted at the destination);
//! - every Spot warning message lands after a call set its container instance DRAINING (AWS
//!   calls and messages share one trace clock);
//! - a Spot warning's container instance is DRAINING when its invocation returns, whatever Auto
//!   Scaling or Slack does;
//! - an instance back from the warm pool is ACTIVE again and its launch completed (never
//!   abandoned): what fleetguard drained, it undoes.
//! - a Spot instance whose warning was handled is DRAINING when AWS takes it; a rebalance drain
//!   no warning followed, and a stopped or hibernated instance started again, end ACTIVE and
//!   unmarked, or registered again if plain, `running` lost or not; a plain instance warned
//!   and handled is out of its target group when AWS takes it (`sim_spot.rs`), the instance at
//!   ECS's attribute limit included;
//! - an instance whose maintenance was announced in time is DRAINING and empty when AWS takes
//!   it; once the window is over and it runs again, its drain is undone; nothing drains it after
//!   its Health event closed; none is replaced through a group without our terminate hook;
//! - no task a drain stopped is reported failed; every alarm transition handled is delivered.

#[path = "sim_checks.rs"]
mod checks;
#[path = "sim_invoke.rs"]
mod invoke;
#[path = "sim_maintenance.rs"]
mod maintenance;
#[path = "sim_seams.rs"]
mod seams;
#[path = "sim_spot.rs"]
mod spot;
#[path = "sim_step.rs"]
mod step;
#[path = "sim_world.rs"]
mod world;

use asg_lifecycle::config::LifecycleConfig;
use fleetguard::config::CommonConfig;
use fleetguard::kept_marks::Marked;
use fleetguard::notify::NotificationKind;
use fleetguard::out_of_service::Fleet;
use fleetguard::testing::{FakeAws, FakeClock, FakeNotifier};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

const T0: i64 = 1_800_000_000;
const OUR_HOOK: &str = "fleetguard-drain";
const FOREIGN_HOOK: &str = "backup-on-terminate";
/// ECS managed instance draining's hook (a capacity provider with managed draining): ECS sets
/// the instance DRAINING and completes it once empty.
const MANAGED_HOOK: &str = "ecs-managed-draining-termination-hook";
const JOIN_HOOK: &str = "fleetguard-join";
const CLUSTER: &str = "prod";
/// How long a run lasts at most (virtual time).
const HORIZON_SECS: i64 = 8 * 3600;

type Rng = rand_pcg::Pcg64Mcg;
/// ECS as the functions are wired: marks kept in the shared table as well.
type Ecs = Marked<FakeAws, FakeNotifier>;
type Asg = asg_lifecycle::Handler<Ecs, FakeAws, FakeAws, FakeNotifier>;
type Spot = spot_interruption::Handler<Ecs, FakeAws, FakeAws, FakeNotifier>;
type Deploy = ecs_deployment::Handler<FakeAws, FakeNotifier>;
type Fanout = alarm_fanout::Handler<FakeNotifier>;
type Maint = instance_maintenance::Handler<Ecs, FakeAws, FakeAws, FakeAws, FakeNotifier>;

/// What one seed's run did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub instances: usize,
    pub invocations: usize,
    pub failed_invocations: usize,
    pub dropped_to_dlq: usize,
    pub drained: usize,
    pub forced: usize,
    pub heartbeats: usize,
    pub spot_warnings: usize,
    pub warm_pool_returns: usize,
    pub concurrent_duplicates: usize,
    pub timed_out: usize,
    /// Execution environments recycled.
    pub recycled: usize,
    /// Maintenance windows AWS carried out, and one-time schedules fired.
    pub maintenance_windows: usize,
    pub schedules_fired: usize,
    /// Seeds with an instance at ECS's attribute limit (its marks kept in the table only), and
    /// drains told unmarked (attribute and table both failed: none while the table is up).
    pub at_limit: usize,
    pub unmarked_told: usize,
    /// Instances stopped without notice (EC2's `stopping` to `instance-maintenance`).
    pub user_stops: usize,
    /// Instances AWS retired (terminated) at a scheduled window.
    pub retirements: usize,
    /// Looks of ECS managed draining at a terminating instance.
    pub managed_draining: usize,
    /// Retiring instances replaced through their group (`MAINTENANCE_ACTION=replace`).
    pub replacements: usize,
    /// Plain EC2 instances (no container instance) stopped and started again, and those whose
    /// `running` event never reached `instance-maintenance` (put back by the sweep's backstop).
    pub plain_stops: usize,
    pub plain_running_lost: usize,
    /// Task state changes (each to asg-lifecycle and ecs-deployment), and the fleet alarm's
    /// transitions (to alarm-fanout).
    pub task_events: usize,
    pub alarm_transitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    ScaleIn(usize),
    /// An event to the function: payload, attempt (0 = first delivery).
    Invoke(String, u32),
    Sweep,
    TaskStops(usize, usize),
    ForeignComplete(usize),
    SpotWarning(usize),
    /// The same event delivered twice at once.
    InvokeTogether(String),
    /// A warm-pool instance comes back into service.
    Return(usize),
    /// A deregistered target's deregistration delay is over.
    TargetGone(usize),
    /// A step of a Spot story (`sim_spot.rs`).
    Spot(usize, spot::Step),
    /// A step of a maintenance story (`sim_maintenance.rs`).
    Maint(usize, maintenance::Step),
    /// The tasks of a maintenance story's instance stop (moved by ECS after DRAINING).
    MaintTasksStop(usize),
    /// ECS managed draining looks at a terminating instance of g1: DRAINING, then its hook
    /// completed once the instance is empty.
    EcsManaged(usize),
}

struct Instance {
    id: String,
    group: String,
    tasks: usize,
    /// Seconds after DRAINING at which each task stops.
    stop_after: Vec<i64>,
    scale_in_at: i64,
    terminating_since: Option<i64>,
    terminated: bool,
    draining_seen: bool,
    had_work: bool,
    /// Scales in back to the warm pool (and later returns).
    warm: bool,
    returned_at: Option<i64>,
    /// Registered in the group's target group.
    target: bool,
    target_gone_scheduled: bool,
}

struct OurAction {
    timeout: i64,
    deadline: i64,
    global_deadline: i64,
}

struct Sim {
    rng: Rng,
    late_cluster: bool,
    /// g1 is an ECS capacity provider's group with managed instance draining.
    managed_draining: bool,
    now: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<(i64, u64, Ev)>>,
    aws: FakeAws,
    clock: FakeClock,
    asg: Asg,
    spot: Spot,
    instances: Vec<Instance>,
    timeouts: BTreeMap<String, i64>,
    ours: BTreeMap<usize, OurAction>,
    seen_completions: usize,
    seen_heartbeats: usize,
    max_drain: i64,
    skipped_sweeps: u32,
    deregistration_delay: i64,
    /// Instances that terminated with tasks running, and how far into their drain.
    terminated_busy: Vec<(usize, i64)>,
    violations: Vec<String>,
    /// What reached the on-failure destination: each payload and its last error.
    dead_letters: Vec<(String, String)>,
    stats: Stats,
    /// The instance whose container instance already has 10 custom attributes of other tools:
    /// ECS refuses our mark.
    at_limit: Option<usize>,
    /// Spot instances outside the scale-in fleet, and what happens to them.
    stories: Vec<spot::Story>,
    /// `REBALANCE_UNDO_SECONDS` of this seed.
    rebalance_undo: i64,
    /// An AWS API down until a time (every call of it fails).
    api_down: Option<(&'static str, i64)>,
    maint: Maint,
    /// Replacements through a group seen so far (`World::replaced`).
    seen_replaced: usize,
    deploy: Deploy,
    fanout: Fanout,
    /// The fleet's alarm (`sim_seams.rs`): its transitions.
    alarm: Vec<seams::Transition>,
    /// AWS Health scheduled changes, and whose tasks are being moved.
    maintenance: Vec<maintenance::Story>,
    maintenance_stopping: BTreeSet<usize>,
}

fn instance_id(i: usize) -> String {
    format!("i-0{:016x}", 0xa1b2_c3d4_0000 + i as u64)
}

/// The calls the simulator fails (throttled past the SDK's retries, or down for minutes).
const OPS: [&str; 17] = [
    "DescribeAutoScalingInstances",
    "DescribeAutoScalingGroups",
    "DescribeLifecycleHooks",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "ListTasks",
    "UpdateContainerInstancesState",
    "CompleteLifecycleAction",
    "RecordLifecycleActionHeartbeat",
    "DescribeScalingActivities",
    "PutAttributes",
    "DeleteAttributes",
    "DeregisterTargets",
    "DescribeTargetHealth",
    "ListClusters",
    "ListAttributes",
    "RegisterTargets",
];

impl Sim {
    fn at(&mut self, t: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    /// Deliver an event the way EventBridge does: late, sometimes not at all, sometimes twice.
    fn emit(&mut self, payload: Value) {
        self.emit_text(payload.to_string());
    }

    /// EventBridge's delivery of one event to one rule's target: lost, late, twice.
    fn emit_text(&mut self, text: String) {
        if self.rng.random_bool(0.1) {
            return; // lost
        }
        let t = self.now + self.rng.random_range(0..10);
        if self.rng.random_bool(0.05) {
            // Two deliveries at once: concurrent invocations.
            self.at(t, Ev::InvokeTogether(text));
            return;
        }
        self.at(t, Ev::Invoke(text.clone(), 0));
        if self.rng.random_bool(0.1) {
            let t = self.now + self.rng.random_range(0..60);
            self.at(t, Ev::Invoke(text, 0));
        }
    }

    fn envelope(&self, detail_type: &str, source: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": format!("sim-{}", self.seq), "detail-type": detail_type,
            "source": source, "account": "123456789012",
            "time": chrono::DateTime::from_timestamp(self.now, 0).unwrap().to_rfc3339(),
            "region": "us-east-1", "resources": [], "detail": detail,
        })
    }

    fn container_instance_event(&self, i: usize) -> Value {
        self.container_instance_event_of(&self.instances[i].id)
    }

    fn container_instance_event_of(&self, id: &str) -> Value {
        use fleetguard::ports::DRAIN_MARK_ATTRIBUTE;
        let w = self.aws.world();
        let ci = w
            .container_instances
            .iter()
            .find(|c| c.ec2_instance_id == id)
            .unwrap()
            .clone();
        drop(w);
        self.envelope(
            "ECS Container Instance State Change",
            "aws.ecs",
            json!({
                "clusterArn": ci.cluster_arn, "containerInstanceArn": ci.arn,
                "ec2InstanceId": ci.ec2_instance_id, "status": ci.status,
                "agentConnected": ci.agent_connected,
                "runningTasksCount": ci.running_tasks_count,
                "pendingTasksCount": ci.pending_tasks_count, "version": self.seq,
                "attributes": ci.drain_mark.map(|m| vec![json!({"name": DRAIN_MARK_ATTRIBUTE, "value": m.value()})]).unwrap_or_default(),
                "registeredResources": [], "remainingResources": [],
                "registeredAt": chrono::DateTime::from_timestamp(T0 - 86_400, 0).unwrap().to_rfc3339(),
                "updatedAt": "2026-11-20T15:13:41.402Z",
            }),
        )
    }
}

/// Run one seed. `Err` lists every invariant broken, with the virtual time.
pub async fn run(seed: u64) -> Result<Stats, Vec<String>> {
    let mut sim = Sim::new(seed);
    // Once every instance is gone, ten more minutes: Lambda's retries and the sweeps that
    // deliver what failed on the way.
    let mut end = T0 + HORIZON_SECS;
    while let Some(Reverse((t, _, ev))) = sim.queue.pop() {
        if t > end {
            break;
        }
        sim.step(t, ev).await;
        if end == T0 + HORIZON_SECS
            && sim
                .instances
                .iter()
                .all(|x| x.terminated && (!x.warm || x.returned_at.is_some()))
            && sim.stories_done()
            && sim.maintenance_done()
        {
            end = sim.now + 600;
        }
    }
    sim.finish();
    if sim.violations.is_empty() {
        Ok(sim.stats)
    } else {
        Err(sim.violations)
    }
}

/// Run `run` over `seeds`, spread over this machine's cores: each thread its own runtime on
/// paused time (the pipeline's backoff, Retry-After and lock waits cost no wall-clock time),
/// its handlers' logs silenced unless `SIM_LOG` is set. Each seed is its own world, so where it
/// runs changes nothing. The outcomes in seed order.
pub fn run_seeds<S, F, Fut>(seeds: &[u64], run: F) -> Vec<(u64, Result<S, Vec<String>>)>
where
    S: Send,
    F: Fn(u64) -> Fut + Sync,
    Fut: std::future::Future<Output = Result<S, Vec<String>>>,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(seeds.len().max(1));
    let mut out: Vec<(u64, Result<S, Vec<String>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run = &run;
                scope.spawn(move || {
                    let _quiet = quiet();
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .start_paused(true)
                        .build()
                        .expect("a runtime");
                    seeds
                        .iter()
                        .skip(t)
                        .step_by(threads)
                        .map(|&seed| (seed, rt.block_on(run(seed))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a simulator thread panicked"))
            .collect()
    });
    out.sort_by_key(|(seed, _)| *seed);
    out
}

/// Silence the handlers' logs unless `SIM_LOG` is set.
pub fn quiet() -> Option<tracing::subscriber::DefaultGuard> {
    (std::env::var_os("SIM_LOG").is_none())
        .then(|| tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default()))
}

/// The seeds to run: `SIM_SEED` (one, to replay), or `SIM_SEEDS` from `SIM_FIRST_SEED` (default
/// 1000 from 1). Zero seeds is refused: a run that checks nothing must not pass.
pub fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().expect("SIM_SEED is a number")];
    }
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .map(|s| s.parse().expect("SIM_SEEDS is a number"))
        .unwrap_or(1000);
    assert!(n > 0, "SIM_SEEDS=0 would run no seed");
    let first: u64 = std::env::var("SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (first..first + n).collect()
}

/// Print a simulator run's totals; fail with the first seed that broke an invariant (and how to
/// replay it) and a few others.
pub fn report(
    name: &str,
    test: &str,
    seeds: &[u64],
    failures: &[(u64, Vec<String>)],
    totals: &impl std::fmt::Debug,
) {
    println!(
        "{name}: {} seeds, {} failed; {totals:?}",
        seeds.len(),
        failures.len()
    );
    if let Some((seed, v)) = failures.first() {
        let others: Vec<String> = failures
            .iter()
            .skip(1)
            .take(200)
            .map(|(s, v)| format!("  seed {s}: {}", v[0]))
            .collect();
        panic!(
            "{} of {} seeds broke an invariant. First, seed {seed} (replay: SIM_SEED={seed} cargo test -p fleetguard-integration --test {test}):\n{}\nothers:\n{}",
            failures.len(),
            seeds.len(),
            v.join("\n"),
            others.join("\n")
        );
    }
}
