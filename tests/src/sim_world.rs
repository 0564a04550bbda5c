//! The world of one seed: the fleet, its groups and hooks, the stories, the five functions
//! wired over one in-memory AWS and one table.

use super::*;

impl Sim {
    pub(super) fn new(seed: u64) -> Self {
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
            // Our hook's timeout as the module allows it (600 s or more: under that a skipped
            // sweep and a short Auto Scaling outage expire it, a documented limit).
            let timeout = [600, 900, 1800, 3600][rng.random_range(0..4)];
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
        // As the module deploys it when groups are named: every function that drains is scoped
        // to them, and a Spot warning waits for the instance's group before draining.
        let named_groups = rng.random_bool(0.5);
        let mut env = vec![
            ("MAX_DRAIN_SECONDS", max_drain.to_string()),
            ("REBALANCE_UNDO_SECONDS", rebalance_undo.to_string()),
            ("REBALANCE_ACTION", rebalance_action.to_owned()),
            ("MAINTENANCE_ACTION", maintenance_action.to_owned()),
            // Plain EC2 instances outside any group are found in this target group.
            ("TARGET_GROUP_ARNS", target_group.clone()),
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
        if named_groups {
            env.push(("AUTO_SCALING_GROUPS", "g0,g1,g2".to_owned()));
        }
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
            dead_letters: Vec::new(),
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
    pub(super) fn start_our_action(&mut self, i: usize, hook: &str, terminating: bool) -> String {
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
    pub(super) fn token(&mut self) -> String {
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

    /// The instance's ECS agent connected (it runs) or gone (stopped, hibernated, terminated).
    pub(super) fn set_agent(&self, id: &str, connected: bool) {
        for c in self
            .aws
            .world()
            .container_instances
            .iter_mut()
            .filter(|c| c.ec2_instance_id == id)
        {
            c.agent_connected = connected;
        }
    }

    /// AWS took the instance: what ran on it stops, its agent goes, its targets go.
    pub(super) fn instance_goes(&self, id: &str) {
        self.aws.stop_tasks_of(id);
        self.set_agent(id, false);
        for t in self.aws.world().targets.values_mut() {
            t.retain(|(x, _)| x != id);
        }
    }
}
