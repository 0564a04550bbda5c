//! A deterministic fleet simulator: the real `asg-lifecycle` and `spot-interruption` handlers,
//! driven through their ports against a model of AWS's semantics on a virtual clock.
//!
//! What it models, per seed:
//! - Auto Scaling: groups scaling in at random times; our terminate hook with a heartbeat timeout
//!   (300 s to an hour), its global limit min(48 h, 100 × timeout), and expiry applying the
//!   default result (the instance terminates whatever runs on it); other tools' hooks on the same
//!   groups, which those tools complete themselves; an instance terminates once every pending
//!   action of it is completed or expired. Completion by token or instance id. In half the
//!   seeds one group has a warm pool with `ReuseOnScaleIn`: its instances scale in to
//!   `Warmed:Pending:Wait` under our terminate hook, are stopped in the pool, and come back
//!   later through `Pending:Wait` under our launch hook.
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
//!   the warning and starts stopped ones again.
//! - Maintenance stories (`sim_maintenance.rs`): AWS Health scheduled reboots and stops through
//!   EventBridge to the real `instance-maintenance`, EventBridge Scheduler's one-time schedules
//!   fired asynchronously, AWS taking the instance at the window and starting it again.
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
//!   unmarked (`sim_spot.rs`). An instance whose mark ECS refused is exempt from the undo and
//!   drained-message checks (a documented limit; counted).
//! - an instance whose maintenance was announced in time is DRAINING and empty when AWS takes
//!   it; once the window is over and it runs again, its drain is undone.

#[path = "sim_maintenance.rs"]
mod maintenance;
#[path = "sim_seams.rs"]
mod seams;
#[path = "sim_spot.rs"]
mod spot;

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
    fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let aws = FakeAws::new();
        let clock = FakeClock::at(T0);
        aws.cluster(CLUSTER);
        // Up to ten hours: AWS's global limit (100 × the heartbeat timeout, 30,000 s at the
        // shortest) binds, and drains outlast an hour of heartbeats.
        let max_drain = [600, 1800, 3600, 7200, 36_000][rng.random_range(0..5)];
        let mut timeouts = BTreeMap::new();
        // Every instance of g0 (in half the seeds) scales in back to its warm pool.
        let warm_pool = rng.random_bool(0.5);
        let target_group = aws.target("web", "i-0placeholder", 80);
        aws.world().targets.clear();
        let deregistration_delay = [0, 30, 300][rng.random_range(0..3)];
        aws.world().deregistration_delay = true;
        // In some seeds part of the fleet (in g1, whose terminate hook names no cluster) is in
        // a cluster created after the functions read the account's cluster list, which also
        // still names a cluster deleted since.
        let late_cluster = rng.random_bool(0.3);
        for g in ["g0", "g1"] {
            let timeout = [300, 600, 900, 3600][rng.random_range(0..4)];
            aws.group(g, &[], std::slice::from_ref(&target_group));
            let metadata = (!(late_cluster && g == "g1")).then_some(r#"{"cluster": "prod"}"#);
            aws.hook(g, OUR_HOOK, true, timeout, metadata);
            timeouts.insert(g.to_owned(), timeout);
        }
        aws.hook(
            "g0",
            JOIN_HOOK,
            false,
            timeouts["g0"],
            Some(r#"{"cluster": "prod"}"#),
        );
        // Another tool's terminate hook on g1: never ours to complete.
        aws.hook("g1", FOREIGN_HOOK, true, 600, None);
        // In some seeds g1 belongs to a capacity provider with managed draining: ECS drains
        // and completes its own hook, beside ours (neither is ever completed by the other).
        let managed_draining = rng.random_bool(0.3);
        if managed_draining {
            aws.hook("g1", MANAGED_HOOK, true, 3600, None);
        }
        if late_cluster {
            let prod = aws.cluster(CLUSTER);
            aws.world().stale_clusters = Some(vec![
                prod,
                "arn:aws:ecs:us-east-1:123456789012:cluster/retired".into(),
            ]);
        }
        let n = rng.random_range(3..10);
        let mut instances = Vec::new();
        for i in 0..n {
            let id = instance_id(i);
            let in_late_cluster = late_cluster && i % 3 == 0;
            let group = if in_late_cluster || rng.random_bool(0.5) {
                "g1"
            } else {
                "g0"
            }
            .to_owned();
            let tasks = rng.random_range(0..4);
            aws.group_instance(&group, &id, "InService");
            let cluster = if in_late_cluster { "batch" } else { CLUSTER };
            aws.container_instance(cluster, &id, "checkout-api", tasks);
            let target = rng.random_bool(0.5);
            let warm = warm_pool && group == "g0";
            if target {
                aws.target("web", &id, 80);
            }
            let longest = [60, 300, 1200, 5400, 20_000][rng.random_range(0..5)];
            let stop_after = (0..tasks).map(|_| rng.random_range(5..=longest)).collect();
            instances.push(Instance {
                id,
                group,
                tasks,
                stop_after,
                scale_in_at: T0 + rng.random_range(0..1800),
                terminating_since: None,
                terminated: false,
                draining_seen: false,
                had_work: tasks > 0 || target,
                warm,
                returned_at: None,
                target,
                target_gone_scheduled: false,
            });
        }
        let rebalance_undo = [300, 600, 1800][rng.random_range(0..3)];
        let rebalance_action = if rng.random_bool(0.7) {
            "drain"
        } else {
            "notify"
        };
        let stories = spot::stories(&mut rng, &aws, CLUSTER, rebalance_undo);
        // g2: a group with no hook of ours (another tool's terminate hook only).
        aws.group("g2", &[], &[]);
        aws.hook("g2", FOREIGN_HOOK, true, 600, None);
        let maintenance = maintenance::stories(&mut rng, &aws, CLUSTER);
        let maintenance_action = if rng.random_bool(0.5) {
            "replace"
        } else {
            "drain"
        };
        let env = [
            ("MAX_DRAIN_SECONDS", max_drain.to_string()),
            ("REBALANCE_UNDO_SECONDS", rebalance_undo.to_string()),
            ("REBALANCE_ACTION", rebalance_action.to_owned()),
            ("MAINTENANCE_ACTION", maintenance_action.to_owned()),
            ("REPORT_TASK_FAILURES", "true".to_owned()),
            (
                "SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/fleetguard-scheduler".to_owned(),
            ),
            (
                "SCHEDULE_TARGET_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance"
                    .to_owned(),
            ),
        ];
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        // One table and one set of services for both functions, as deployed, on the virtual clock.
        let notifier = FakeNotifier::on_clock({
            let c = clock.clone();
            move || fleetguard::ports::Clock::now(&c)
        });
        let fleet = Fleet {
            ecs: Marked::new(aws.clone(), notifier.clone()),
            elbv2: aws.clone(),
            autoscaling: aws.clone(),
        };
        let common = CommonConfig::from_lookup(&lookup).unwrap();
        let asg = asg_lifecycle::Handler {
            lifecycle: asg_lifecycle::Lifecycle {
                fleet: fleet.clone(),
                config: LifecycleConfig::from_lookup(lookup).unwrap(),
                dry_run: false,
                clock: Arc::new(clock.clone()),
                starts: Default::default(),
                notifier: notifier.clone(),
            },
            common: common.clone(),
        };
        let spot = spot_interruption::Handler {
            common,
            config: spot_interruption::config::SpotConfig::from_lookup(lookup).unwrap(),
            fleet,
            notifier,
            clock: Arc::new(clock.clone()),
        };
        // In a quarter of the seeds, one container instance is at ECS's attribute limit.
        let at_limit = (n > 0 && rng.random_bool(0.25)).then(|| rng.random_range(0..n));
        if let Some(i) = at_limit {
            let mut w = aws.world();
            let arn = w
                .container_instances
                .iter()
                .find(|c| c.ec2_instance_id == instances[i].id)
                .map(|c| c.arn.clone())
                .unwrap();
            w.custom_attributes.insert(arn, 10);
        }
        let maint = instance_maintenance::Handler {
            common: spot.common.clone(),
            config: instance_maintenance::config::MaintenanceConfig::from_lookup(lookup).unwrap(),
            fleet: spot.fleet.clone(),
            schedules: aws.clone(),
            notifier: spot.notifier.clone(),
            clock: Arc::new(clock.clone()),
        };
        let deploy = ecs_deployment::Handler {
            common: spot.common.clone(),
            config: ecs_deployment::config::DeploymentConfig::from_lookup(lookup).unwrap(),
            ecs: aws.clone(),
            notifier: spot.notifier.clone(),
        };
        let fanout = alarm_fanout::Handler {
            common: spot.common.clone(),
            alarms: alarm_fanout::config::AlarmConfig::from_lookup(lookup).unwrap(),
            notifier: spot.notifier.clone(),
        };
        let mut sim = Sim {
            deploy,
            fanout,
            alarm: Vec::new(),
            maint,
            maintenance,
            maintenance_stopping: BTreeSet::new(),
            api_down: None,
            stories,
            rebalance_undo,
            at_limit,
            rng,
            late_cluster,
            managed_draining,
            now: T0,
            seq: 0,
            queue: BinaryHeap::new(),
            aws,
            clock,
            asg,
            spot,
            instances,
            timeouts,
            ours: BTreeMap::new(),
            seen_completions: 0,
            seen_heartbeats: 0,
            seen_replaced: 0,
            max_drain,
            skipped_sweeps: 0,
            deregistration_delay,
            terminated_busy: Vec::new(),
            violations: Vec::new(),
            stats: Stats::default(),
        };
        sim.stats.instances = n;
        for i in 0..n {
            let at = sim.instances[i].scale_in_at;
            sim.at(at, Ev::ScaleIn(i));
        }
        sim.at(T0 + 60, Ev::Sweep);
        sim.schedule_stories();
        sim.schedule_maintenance();
        sim
    }

    /// A pending action of our `hook` for instance `i`, now: its hook timers start. Its token.
    fn start_our_action(&mut self, i: usize, hook: &str, terminating: bool) -> String {
        let (id, group) = (
            self.instances[i].id.clone(),
            self.instances[i].group.clone(),
        );
        self.aws
            .pending_action(&group, hook, &id, terminating, self.now);
        let token = self.token();
        self.aws.token(&group, hook, &id, &token);
        let timeout = self.timeouts[&group];
        self.ours.insert(
            i,
            OurAction {
                timeout,
                deadline: self.now + timeout,
                global_deadline: self.now + asg_lifecycle::decide::global_limit_secs(timeout),
            },
        );
        token
    }

    /// A lifecycle action token, shaped as AWS's (a UUID), from the seed.
    fn token(&mut self) -> String {
        let (a, b, c) = (
            self.rng.random::<u64>(),
            self.rng.random::<u64>(),
            self.rng.random::<u64>(),
        );
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            a & 0xffff,
            b & 0xfff,
            c & 0xfff,
            (b >> 16) & 0xffff_ffff_ffff
        )
    }

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

    async fn invoke(&mut self, payload: &str, attempt: u32) {
        self.stats.invocations += 1;
        self.clock.set(self.now);
        // Now and then Lambda recycles the execution environment: what lived only in memory
        // (the start-time cache) is gone. The dedupe table, like AWS, stays.
        if self.rng.random_bool(0.01) {
            self.recycle();
        }
        // Throttling past the SDK's retries on some call, now and then.
        if self.rng.random_bool(0.08) {
            let op = OPS[self.rng.random_range(0..OPS.len())];
            self.aws.throttle(op, 1);
        }
        // Now and then one API stays down across Lambda's retries (90 to 150 s: shorter than
        // the shortest heartbeat timeout, past which AWS itself gives up): the sweep has to
        // finish what the event's invocations could not.
        if self.api_down.is_none_or(|(_, until)| until < self.now) && self.rng.random_bool(0.005) {
            let op = OPS[self.rng.random_range(0..OPS.len())];
            self.api_down = Some((op, self.now + self.rng.random_range(90..150)));
        }
        if let Some((op, until)) = self.api_down
            && until >= self.now
        {
            self.aws.throttle(op, 1_000);
        }
        let faults: String = self
            .aws
            .world()
            .failures
            .iter()
            .map(|(op, _, _)| format!(", {op} failing"))
            .collect();
        // A notification outage (Slack down) for this invocation, now and then.
        let outage = self.rng.random_bool(0.08);
        self.asg
            .lifecycle
            .notifier
            .fail_with(outage.then_some("slack:default"));
        let (deploy, json) = seams::target(payload);
        let event: Value = serde_json::from_str(json).unwrap();
        // Now and then the invocation times out part-way: Lambda stops it between two calls,
        // whatever it was doing, and retries the event.
        let cut = self
            .rng
            .random_bool(0.03)
            .then(|| self.rng.random_range(1..40));
        let result = match cut {
            None => self.call(&event, deploy).await,
            Some(polls) => CutAfter {
                inner: self.call(&event, deploy),
                polls_left: polls,
            }
            .await
            .unwrap_or_else(|| {
                self.stats.timed_out += 1;
                Err(fleetguard::serve::Error {
                    error_type: "Sandbox.Timedout",
                    message: "Task timed out".into(),
                })
            }),
        };
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!(
                "t+{} {} (attempt {attempt}{}{}{}): {:?}",
                self.now - T0,
                event["detail-type"].as_str().unwrap_or_default(),
                if outage { ", notifications down" } else { "" },
                faults,
                cut.map(|p| format!(", cut after {p} polls"))
                    .unwrap_or_default(),
                result
                    .as_ref()
                    .map(|s| (&s.outcome, &s.actions))
                    .map_err(|e| &e.message)
            );
        }
        if let Ok(watch) = std::env::var("SIM_WATCH") {
            let w = self.aws.world();
            for c in w
                .container_instances
                .iter()
                .filter(|c| c.ec2_instance_id == watch)
            {
                eprintln!(
                    "    {watch}: {} running={} mark={:?}",
                    c.status, c.running_tasks_count, c.drain_mark
                );
            }
            for d in w.deregistered.iter().filter(|d| d.1 == watch) {
                eprintln!("    {watch}: deregistered {d:?}");
            }
            for p in w.pending.iter().filter(|p| p.2 == watch) {
                eprintln!("    {watch}: pending {p:?}");
            }
        }
        self.asg.lifecycle.notifier.fail_with(None);
        self.aws.world().failures.clear();
        if let Ok(summary) = &result {
            self.spot_handled(&event, summary);
            self.maintenance_handled(&event);
            self.alarm_handled(&event);
        }
        self.after_invoke(payload, attempt, result.err());
        self.observe();
    }

    /// New execution environments for both functions.
    fn recycle(&mut self) {
        self.stats.recycled += 1;
        let lc = &self.asg.lifecycle;
        self.asg = asg_lifecycle::Handler {
            common: self.asg.common.clone(),
            lifecycle: asg_lifecycle::Lifecycle {
                fleet: lc.fleet.clone(),
                notifier: lc.notifier.clone(),
                config: lc.config.clone(),
                dry_run: lc.dry_run,
                clock: lc.clock.clone(),
                starts: Default::default(),
            },
        };
        self.maint = instance_maintenance::Handler {
            common: self.maint.common.clone(),
            config: self.maint.config.clone(),
            fleet: self.maint.fleet.clone(),
            schedules: self.maint.schedules.clone(),
            notifier: self.maint.notifier.clone(),
            clock: self.maint.clock.clone(),
        };
        self.spot = spot_interruption::Handler {
            common: self.spot.common.clone(),
            config: self.spot.config.clone(),
            fleet: self.spot.fleet.clone(),
            notifier: self.spot.notifier.clone(),
            clock: self.spot.clock.clone(),
        };
    }

    /// The function the event is for, invoked: Spot events to `spot-interruption`, the rest to
    /// `asg-lifecycle`.
    fn call<'a>(
        &'a self,
        event: &'a Value,
        deploy: bool,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<fleetguard::serve::Summary, fleetguard::serve::Error>,
                > + 'a,
        >,
    > {
        if deploy {
            return Box::pin(fleetguard::testing::invoke(&self.deploy, event));
        }
        match event["detail-type"].as_str() {
            Some(
                "EC2 Spot Instance Interruption Warning" | "EC2 Instance Rebalance Recommendation",
            ) => Box::pin(fleetguard::testing::invoke(&self.spot, event)),
            Some("CloudWatch Alarm State Change") => {
                Box::pin(fleetguard::testing::invoke(&self.fanout, event))
            }
            Some(
                "AWS Health Event"
                | "Scheduled Maintenance"
                | "EC2 Instance State-change Notification",
            ) => Box::pin(fleetguard::testing::invoke(&self.maint, event)),
            _ => Box::pin(fleetguard::testing::invoke(&self.asg, event)),
        }
    }

    /// Lambda's async retries: twice, after one and two minutes, then the on-failure
    /// destination.
    fn after_invoke(
        &mut self,
        payload: &str,
        attempt: u32,
        error: Option<fleetguard::serve::Error>,
    ) {
        if let Some(e) = error {
            self.stats.failed_invocations += 1;
            if attempt < 2 {
                let t = self.now + 60 * (attempt as i64 + 1);
                self.at(t, Ev::Invoke(payload.to_owned(), attempt + 1));
            } else {
                self.stats.dropped_to_dlq += 1;
                tracing::debug!(error = %e.message, "dropped to the on-failure destination");
            }
        }
    }

    /// The same event delivered twice at once: both invocations run concurrently, their AWS
    /// calls interleaving (each fake call yields, as a network call does).
    async fn invoke_together(&mut self, payload: &str) {
        self.stats.invocations += 2;
        self.stats.concurrent_duplicates += 1;
        self.clock.set(self.now);
        let (deploy, json) = seams::target(payload);
        let event: Value = serde_json::from_str(json).unwrap();
        let (a, b) = tokio::join!(self.call(&event, deploy), self.call(&event, deploy));
        for summary in [&a, &b].into_iter().flatten() {
            self.spot_handled(&event, summary);
            self.maintenance_handled(&event);
            self.alarm_handled(&event);
        }
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!(
                "t+{} {} (twice at once): {:?} / {:?}",
                self.now - T0,
                event["detail-type"].as_str().unwrap_or_default(),
                a.as_ref().map(|s| &s.outcome).map_err(|e| &e.message),
                b.as_ref().map(|s| &s.outcome).map_err(|e| &e.message),
            );
        }
        self.after_invoke(payload, 0, a.err());
        self.after_invoke(payload, 0, b.err());
        self.observe();
    }

    /// What the function did to AWS since the last look: checked against the rules.
    fn observe(&mut self) {
        let (completions, heartbeats, draining) = {
            let w = self.aws.world();
            let c = w.completions[self.seen_completions..].to_vec();
            let h = w.heartbeats[self.seen_heartbeats..].to_vec();
            let d: BTreeSet<String> = w
                .container_instances
                .iter()
                .filter(|c| c.status == "DRAINING")
                .map(|c| c.ec2_instance_id.clone())
                .collect();
            (c, h, d)
        };
        self.seen_completions += completions.len();
        self.seen_heartbeats += heartbeats.len();
        for (group, hook, instance, result) in &completions {
            if hook == JOIN_HOOK {
                if *result != fleetguard::ports::LifecycleActionResult::Continue {
                    self.violations.push(format!(
                        "t+{}: the launch of {instance} back from the warm pool was abandoned",
                        self.now - T0
                    ));
                }
                self.aws.group_instance(group, instance, "InService");
            } else if hook != OUR_HOOK {
                self.violations.push(format!(
                    "t+{}: completed {hook} of {instance} in {group}: not ours",
                    self.now - T0
                ));
            }
            if let Some(i) = self.instances.iter().position(|x| &x.id == instance) {
                self.ours.remove(&i);
            }
        }
        for (_, hook, instance) in &heartbeats {
            if hook != OUR_HOOK && hook != JOIN_HOOK {
                self.violations.push(format!(
                    "t+{}: heartbeat for {hook} of {instance}: not ours",
                    self.now - T0
                ));
                continue;
            }
            self.stats.heartbeats += 1;
            if let Some(i) = self.instances.iter().position(|x| &x.id == instance)
                && let Some(a) = self.ours.get_mut(&i)
            {
                a.deadline = self.now + a.timeout;
            }
        }
        // Deregistered targets leave after the deregistration delay.
        let draining_targets: BTreeSet<String> = self
            .aws
            .world()
            .targets
            .values()
            .flatten()
            .filter(|(_, r)| r.state == "draining")
            .map(|(i, _)| i.clone())
            .collect();
        for i in 0..self.instances.len() {
            if !self.instances[i].target_gone_scheduled
                && draining_targets.contains(&self.instances[i].id)
            {
                self.instances[i].target_gone_scheduled = true;
                let t = self.now + self.deregistration_delay;
                self.at(t, Ev::TargetGone(i));
            }
        }
        for i in 0..self.instances.len() {
            if !self.instances[i].draining_seen && draining.contains(&self.instances[i].id) {
                self.instances[i].draining_seen = true;
                for k in 0..self.instances[i].tasks {
                    let t = self.now + self.instances[i].stop_after[k];
                    self.at(t, Ev::TaskStops(i, k));
                }
            }
        }
        self.maintenance_tasks_stop();
        self.replacements();
        self.alarm_follow();
        self.terminate_what_proceeds();
    }

    /// An instance whose pending actions are all done terminates now: check what ran on it.
    fn terminate_what_proceeds(&mut self) {
        for i in 0..self.instances.len() {
            let x = &self.instances[i];
            if x.terminated || x.terminating_since.is_none() {
                continue;
            }
            let pending = self
                .aws
                .world()
                .pending
                .iter()
                .any(|(_, _, id)| id == &x.id);
            if pending {
                continue;
            }
            let running = self.running_tasks(i) + self.registered_targets(i);
            let id = x.id.clone();
            let group = x.group.clone();
            let since = x.terminating_since.unwrap_or(self.now);
            let warm = x.warm;
            self.instances[i].terminated = true;
            if warm {
                // Stopped in the warm pool: the agent goes, the container instance stays (as we
                // left it), and the instance comes back later. What still ran (a forced drain)
                // stopped with it: the agent reports it STOPPED when it reconnects.
                self.aws.group_instance(&group, &id, "Warmed:Stopped");
                self.aws.stop_tasks_of(&id);
                {
                    let mut w = self.aws.world();
                    for c in w
                        .container_instances
                        .iter_mut()
                        .filter(|c| c.ec2_instance_id == id)
                    {
                        c.agent_connected = false;
                    }
                    for t in w.targets.values_mut() {
                        t.retain(|(x, _)| x != &id);
                    }
                }
                let t = self.now + self.rng.random_range(300..3600);
                self.at(t, Ev::Return(i));
            } else {
                let mut w = self.aws.world();
                w.group_instances.retain(|g| g.instance_id != id);
                w.container_instances.retain(|c| c.ec2_instance_id != id);
                for t in w.targets.values_mut() {
                    t.retain(|(x, _)| x != &id);
                }
            }
            if running > 0 {
                // Allowed only for a forced drain: its message is checked at the end (it may
                // reach people on a retry), and its timing now.
                self.terminated_busy.push((i, self.now - since));
                if self.now - since < self.max_drain.min(self.budget_cap(&group)) - 5 {
                    self.violations.push(format!(
                        "t+{}: {id} terminated with {running} task(s) or target(s) left after {} s, before MAX_DRAIN_SECONDS={}",
                        self.now - T0,
                        self.now - since,
                        self.max_drain
                    ));
                }
            }
        }
    }

    fn budget_cap(&self, group: &str) -> i64 {
        let t = self.timeouts[group];
        asg_lifecycle::decide::effective_budget_secs(i64::MAX, t)
    }

    fn running_tasks(&self, i: usize) -> usize {
        let id = &self.instances[i].id;
        self.aws
            .world()
            .tasks
            .iter()
            .filter(|(_, ci, t)| ci.ends_with(&format!("/{id}")) && t.last_status != "STOPPED")
            .count()
    }

    fn registered_targets(&self, i: usize) -> usize {
        let id = &self.instances[i].id;
        self.aws
            .world()
            .targets
            .values()
            .flatten()
            .filter(|(x, _)| x == id)
            .count()
    }

    /// The instance at ECS's attribute limit: its marks live in the table only (`kept_marks`),
    /// and every check holds for it as for the others. A drain told unmarked is counted.
    fn count_unmarked(&mut self) {
        let Some(i) = self.at_limit else { return };
        let id = self.instances[i].id.clone();
        let told = self.asg.lifecycle.notifier.sent().iter().any(|n| {
            n.dedupe_key.starts_with("unmarked-drain|") && n.title.starts_with(id.as_str())
        });
        self.stats.at_limit += 1;
        self.stats.unmarked_told += usize::from(told);
    }

    /// Telling never holds back draining: every Spot warning message that landed came after a
    /// call setting its container instance DRAINING (on the one trace clock of calls and
    /// messages).
    fn check_drain_before_message(&mut self) {
        let seen = self.asg.lifecycle.notifier.services().seen();
        let w = self.aws.world();
        for s in seen.iter().filter(|s| s.landed) {
            let Some(rest) = s.origin.strip_prefix("spot|") else {
                continue;
            };
            let id = rest.split('|').next().unwrap_or_default();
            let Some(arn) = w
                .container_instances
                .iter()
                .find(|c| c.ec2_instance_id == id)
                .map(|c| c.arn.clone())
                .or_else(|| {
                    w.drain_calls
                        .iter()
                        .find(|(_, a)| a.ends_with(&format!("/{id}")))
                        .map(|(_, a)| a.clone())
                })
            else {
                continue;
            };
            if !w.drain_calls.iter().any(|(t, a)| *a == arn && *t < s.tick) {
                self.violations.push(format!(
                    "the Spot warning message for {id} landed before any call set it DRAINING"
                ));
            }
        }
    }

    /// How many copies of the message landed at the destinations.
    /// Copies of the message that a drain ended (drained or forced: one key) that landed.
    fn landed_ended(&self, group: &str, instance: &str) -> usize {
        let key = format!("{}|{group}|{instance}", asg_lifecycle::render::DRAIN_ENDED);
        self.asg
            .lifecycle
            .notifier
            .services()
            .seen()
            .iter()
            .filter(|s| s.landed && s.origin == key)
            .count()
    }

    fn delivered(&self, kind: NotificationKind, group: &str, instance: &str) -> bool {
        let key = format!("{}|{group}|{instance}", asg_lifecycle::render::DRAIN_ENDED);
        self.asg
            .lifecycle
            .notifier
            .sent()
            .iter()
            .any(|n| n.kind == kind && n.dedupe_key == key)
    }

    /// Hooks whose timer runs out before `until`: AWS applies the default result.
    fn expire_hooks(&mut self, until: i64) {
        let expired: Vec<(usize, i64)> = self
            .ours
            .iter()
            .filter_map(|(i, a)| {
                let at = a.deadline.min(a.global_deadline);
                (at < until).then_some((*i, at))
            })
            .collect();
        for (i, at) in expired {
            self.now = at.max(self.now);
            let id = self.instances[i].id.clone();
            let since = self.instances[i].terminating_since.unwrap_or(at);
            self.violations.push(format!(
                "t+{}: our hook on {id} expired {} s into its drain (timeout {} s)",
                at - T0,
                at - since,
                self.ours[&i].timeout
            ));
            self.ours.remove(&i);
            self.aws
                .world()
                .pending
                .retain(|(_, h, x)| !(x == &id && (h == OUR_HOOK || h == JOIN_HOOK)));
            self.terminate_what_proceeds();
        }
    }

    async fn step(&mut self, t: i64, ev: Ev) {
        self.expire_hooks(t);
        self.now = t.max(self.now);
        self.fire_schedules();
        match ev {
            Ev::ScaleIn(i) => {
                let (id, group) = (
                    self.instances[i].id.clone(),
                    self.instances[i].group.clone(),
                );
                self.instances[i].terminating_since = Some(self.now);
                let warm = self.instances[i].warm;
                self.aws.group_instance(
                    &group,
                    &id,
                    if warm {
                        "Warmed:Pending:Wait"
                    } else {
                        "Terminating:Wait"
                    },
                );
                let token = self.start_our_action(i, OUR_HOOK, true);
                if group == "g1" {
                    self.aws
                        .pending_action(&group, FOREIGN_HOOK, &id, true, self.now);
                    let t = self.now + self.rng.random_range(20..400);
                    self.at(t, Ev::ForeignComplete(i));
                    if self.managed_draining {
                        self.aws
                            .pending_action(&group, MANAGED_HOOK, &id, true, self.now);
                        let t = self.now + self.rng.random_range(1..30);
                        self.at(t, Ev::EcsManaged(i));
                    }
                }
                let mut detail = json!({
                    "LifecycleActionToken": token,
                    "AutoScalingGroupName": group, "LifecycleHookName": OUR_HOOK,
                    "EC2InstanceId": id,
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "NotificationMetadata": "{\"cluster\": \"prod\"}",
                });
                if self.late_cluster && group == "g1" {
                    detail["NotificationMetadata"] = Value::Null;
                }
                if warm {
                    detail["Origin"] = json!("AutoScalingGroup");
                    detail["Destination"] = json!("WarmPool");
                }
                let e = self.envelope(
                    "EC2 Instance-terminate Lifecycle Action",
                    "aws.autoscaling",
                    detail,
                );
                self.emit(e);
                // Some of them get a Spot warning on the way out too.
                if !warm && self.rng.random_bool(0.2) {
                    let t = self.now + self.rng.random_range(0..30);
                    self.at(t, Ev::SpotWarning(i));
                }
            }
            Ev::Spot(j, step) => self.spot_step(j, step).await,
            Ev::Maint(j, step) => self.maintenance_step(j, step).await,
            Ev::MaintTasksStop(j) => {
                self.maintenance_tasks_stopped(j);
                self.observe();
            }
            Ev::Invoke(payload, attempt) => self.invoke(&payload, attempt).await,
            Ev::InvokeTogether(payload) => self.invoke_together(&payload).await,
            Ev::TargetGone(i) => {
                let id = self.instances[i].id.clone();
                for t in self.aws.world().targets.values_mut() {
                    t.retain(|(x, r)| !(x == &id && r.state == "draining"));
                }
                self.terminate_what_proceeds();
            }
            Ev::Return(i) => {
                let (id, group) = (
                    self.instances[i].id.clone(),
                    self.instances[i].group.clone(),
                );
                self.instances[i].returned_at = Some(self.now);
                self.stats.warm_pool_returns += 1;
                self.aws.group_instance(&group, &id, "Pending:Wait");
                let token = self.start_our_action(i, JOIN_HOOK, false);
                // The instance starts; the agent reconnects (its container instance is as it
                // was left) and Auto Scaling puts it back in its target group.
                {
                    let mut w = self.aws.world();
                    for c in w
                        .container_instances
                        .iter_mut()
                        .filter(|c| c.ec2_instance_id == id)
                    {
                        c.agent_connected = true;
                    }
                }
                if self.instances[i].target {
                    self.aws.target("web", &id, 80);
                }
                let e = self.container_instance_event(i);
                self.emit(e);
                let e = self.envelope(
                    "EC2 Instance-launch Lifecycle Action",
                    "aws.autoscaling",
                    json!({
                        "LifecycleActionToken": token,
                        "AutoScalingGroupName": group, "LifecycleHookName": JOIN_HOOK,
                        "EC2InstanceId": id,
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                        "NotificationMetadata": "{\"cluster\": \"prod\"}",
                        "Origin": "WarmPool", "Destination": "AutoScalingGroup",
                    }),
                );
                self.emit(e);
            }
            Ev::Sweep => {
                // Now and then a sweep does not run at all, but never three in a row: no
                // stateless heartbeat survives a sweep that stops for longer than the timeout.
                let skip = self.skipped_sweeps < 2 && self.rng.random_bool(0.05);
                self.skipped_sweeps = if skip { self.skipped_sweeps + 1 } else { 0 };
                if !skip {
                    let e = self.envelope("Scheduled Event", "aws.events", json!({}));
                    self.invoke(&e.to_string(), 0).await;
                }
                // The next minute, late by up to 45 s (EventBridge's schedules jitter).
                let next = (self.now - T0) / 60 * 60 + T0 + 60 + self.rng.random_range(0..45);
                self.at(next, Ev::Sweep);
            }
            Ev::TaskStops(i, k) => {
                let id = self.instances[i].id.clone();
                if self.instances[i].terminated {
                    return;
                }
                let task_arn = {
                    let mut w = self.aws.world();
                    let mut arn = None;
                    let mut n = 0;
                    for (cluster, ci, t) in w.tasks.iter_mut() {
                        if ci.ends_with(&format!("/{id}")) {
                            if n == k && t.last_status != "STOPPED" {
                                t.last_status = "STOPPED".into();
                                t.desired_status = "STOPPED".into();
                                arn = Some((t.arn.clone(), ci.clone(), cluster.clone()));
                            }
                            n += 1;
                        }
                    }
                    if arn.is_some()
                        && let Some(c) = w
                            .container_instances
                            .iter_mut()
                            .find(|c| c.ec2_instance_id == id)
                    {
                        c.running_tasks_count = (c.running_tasks_count - 1).max(0);
                    }
                    arn
                };
                if let Some((task, ci, cluster)) = task_arn {
                    let e = self.envelope(
                        "ECS Task State Change",
                        "aws.ecs",
                        json!({
                            "clusterArn": cluster,
                            "containerInstanceArn": ci, "taskArn": task,
                            "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                            "group": "service:checkout-api", "launchType": "EC2",
                            "stopCode": "ServiceSchedulerInitiated",
                            "stoppedReason": "Task stopped because its container instance is draining",
                            "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 143}],
                            "version": self.seq,
                            "updatedAt": "2026-11-20T10:05:12.733Z",
                        }),
                    );
                    self.emit_task_event(e);
                    let e = self.container_instance_event(i);
                    self.emit(e);
                }
            }
            Ev::EcsManaged(i) => {
                let id = self.instances[i].id.clone();
                if self.instances[i].terminated {
                    return;
                }
                self.stats.managed_draining += 1;
                let (set, empty) = {
                    let mut w = self.aws.world();
                    let mut set = false;
                    let mut empty = true;
                    for c in w
                        .container_instances
                        .iter_mut()
                        .filter(|c| c.ec2_instance_id == id)
                    {
                        if c.status == "ACTIVE" {
                            c.status = "DRAINING".into();
                            set = true;
                        }
                        empty &= c.running_tasks_count == 0 && c.pending_tasks_count == 0;
                    }
                    (set, empty)
                };
                if set {
                    let e = self.container_instance_event_of(&id);
                    self.emit(e);
                }
                if empty {
                    self.aws
                        .world()
                        .pending
                        .retain(|(_, h, x)| !(x == &id && h == MANAGED_HOOK));
                    self.terminate_what_proceeds();
                } else {
                    self.at(self.now + 30, Ev::EcsManaged(i));
                }
                self.observe();
            }
            Ev::ForeignComplete(i) => {
                let id = self.instances[i].id.clone();
                self.aws
                    .world()
                    .pending
                    .retain(|(_, h, x)| !(x == &id && h == FOREIGN_HOOK));
                self.terminate_what_proceeds();
            }
            Ev::SpotWarning(i) => {
                if self.instances[i].terminated {
                    return;
                }
                self.stats.spot_warnings += 1;
                self.clock.set(self.now);
                // A mass reclaim: Auto Scaling throttles.
                if self.rng.random_bool(0.5) {
                    self.aws.throttle("DescribeAutoScalingInstances", 1);
                }
                let id = self.instances[i].id.clone();
                let e = self.envelope(
                    "EC2 Spot Instance Interruption Warning",
                    "aws.ec2",
                    json!({"instance-id": id, "instance-action": "terminate"}),
                );
                // Slack down too, now and then: telling must never hold back the drain.
                let slack_down = self.rng.random_bool(0.3);
                self.spot
                    .notifier
                    .fail_with(slack_down.then_some("slack:default"));
                let _ = fleetguard::testing::invoke(&self.spot, &e).await;
                self.spot.notifier.fail_with(None);
                self.aws.world().failures.clear();
                let status = self
                    .aws
                    .world()
                    .container_instances
                    .iter()
                    .find(|c| c.ec2_instance_id == id)
                    .map(|c| c.status.clone());
                if status.as_deref() == Some("ACTIVE") {
                    self.violations.push(format!(
                        "t+{}: Spot warning for {id}: container instance still ACTIVE after the invocation",
                        self.now - T0
                    ));
                }
                self.observe();
            }
        }
    }

    fn finish(&mut self) {
        self.count_unmarked();
        self.check_stories();
        self.check_maintenance();
        self.check_drain_before_message();
        self.check_seams();
        for i in 0..self.instances.len() {
            let x = &self.instances[i];
            let Some(at) = x.returned_at else { continue };
            let id = x.id.clone();
            let (status, state, pending) = {
                let w = self.aws.world();
                (
                    w.container_instances
                        .iter()
                        .find(|c| c.ec2_instance_id == id)
                        .map(|c| (c.status.clone(), c.drain_mark.is_some())),
                    w.group_instances
                        .iter()
                        .find(|g| g.instance_id == id)
                        .map(|g| g.lifecycle_state.clone()),
                    w.pending.iter().any(|p| p.2 == id),
                )
            };
            if status != Some(("ACTIVE".into(), false))
                || state.as_deref() != Some("InService")
                || pending
            {
                self.violations.push(format!(
                    "{id} came back from the warm pool at t+{}, but is {status:?} (ACTIVE, unmarked expected), {state:?}, pending: {pending}",
                    at - T0
                ));
            }
        }
        for (i, after) in self.terminated_busy.clone() {
            let (id, group) = (
                self.instances[i].id.clone(),
                self.instances[i].group.clone(),
            );
            if !self.delivered(NotificationKind::DrainForced, &group, &id) {
                self.violations.push(format!(
                    "{id} terminated with tasks running {after} s into its drain, and no forced message was delivered"
                ));
            }
        }
        for i in 0..self.instances.len() {
            let x = &self.instances[i];
            if !x.terminated {
                self.violations.push(format!(
                    "{} never terminated (scaled in at t+{}; pending: {:?})",
                    x.id,
                    x.scale_in_at - T0,
                    self.aws
                        .world()
                        .pending
                        .iter()
                        .filter(|p| p.2 == x.id)
                        .collect::<Vec<_>>()
                ));
                continue;
            }
            let (id, group) = (x.id.clone(), x.group.clone());
            let drained = self.delivered(NotificationKind::DrainCompleted, &group, &id);
            let forced = self.delivered(NotificationKind::DrainForced, &group, &id);
            if forced {
                self.stats.forced += 1;
            } else if drained {
                self.stats.drained += 1;
            }
            // At ECS's attribute limit too: the mark is kept in the table.
            if x.had_work && !(drained || forced) {
                self.violations.push(format!(
                    "{id}: drained, but no drained or forced message was delivered"
                ));
            }
            // Exactly one: what landed at the destination, copies included (no answer is ever
            // lost in this world, so a second copy would be a defect).
            let copies = self.landed_ended(&group, &id);
            if copies > 1 {
                self.violations.push(format!(
                    "{id}: {copies} drained or forced messages landed, one expected"
                ));
            }
            if drained && forced {
                self.violations
                    .push(format!("{id}: both a drained and a forced message"));
            }
        }
    }
}

/// A future stopped after `polls_left` polls (`None`), as Lambda stops an invocation at its
/// timeout: between two calls, whatever it was doing.
struct CutAfter<F: std::future::Future + ?Sized> {
    inner: std::pin::Pin<Box<F>>,
    polls_left: u32,
}

impl<F: std::future::Future + ?Sized> std::future::Future for CutAfter<F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.polls_left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.polls_left -= 1;
        self.inner.as_mut().poll(cx).map(Some)
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
            .take(10)
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
