//! Spot stories in the fleet simulator: instances outside any scale-in that get rebalance
//! recommendations and interruption warnings (terminate, stop, hibernate), delivered through
//! EventBridge (late, lost, twice) to the real `spot-interruption`, while `asg-lifecycle` (its
//! ECS events and sweeps) may undo what was drained. AWS reclaims, stops and starts them on its
//! own clock. Beside them, instances someone stops without notice (EC2's `stopping` state change
//! to the real `instance-maintenance`) and starts again.
//!
//! Invariants:
//! - once a warning was handled, the container instance is DRAINING when AWS takes the instance
//!   (two minutes after the warning): nothing re-activated it, not a rebalance drain's undo;
//! - a drain whose reason is over is undone: a rebalance recommendation no warning followed, a
//!   stopped or hibernated instance started again, by AWS or by someone (ACTIVE, unmarked at the
//!   end).

use super::{Ev, Rng, Sim, T0};
use fleetguard::reasons::PLAIN_BACKSTOP_SECS;
use rand::RngExt;
use serde_json::json;

/// What happens to one Spot instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// A rebalance recommendation, and no warning after it.
    RebalanceOnly,
    /// A rebalance recommendation, then a terminate warning `after` seconds later.
    RebalanceThenTerminate { after: i64 },
    /// A stop or hibernate warning; started again `back_after` seconds after the stop.
    Stop { hibernate: bool, back_after: i64 },
    /// Stopped by someone (the console, `StopInstances`): no warning, only EC2's `stopping`
    /// state change to `instance-maintenance`, stopped `after` seconds later; started again
    /// `back_after` seconds after that.
    UserStop { after: i64, back_after: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    Rebalance,
    Warning,
    /// AWS takes the instance: terminated, or stopped.
    Taken,
    /// Started again (a stop or hibernation).
    Back,
}

#[derive(Debug, Clone)]
pub(super) struct Story {
    pub id: String,
    pub kind: Kind,
    pub starts_at: i64,
    /// A warning invocation returned without error.
    pub warning_handled: bool,
    pub taken: bool,
    pub back_at: Option<i64>,
    /// Drained without our mark (ECS refused it twice), and said so: not expected undone.
    pub unmarked: bool,
    /// When the story's last reason is over, and an undo may be expected from then on.
    pub over_at: Option<i64>,
    /// A plain EC2 instance (now and then): no container instance, registered in the `web`
    /// target group (`TARGET_GROUP_ARNS`); its deregistration is what is undone.
    pub plain: bool,
    /// An EC2 `running` of it after its return was handled. Without it, a stopped plain
    /// instance is put back by the sweep's backstop (`PLAIN_BACKSTOP_SECS` later).
    pub running_handled: bool,
}

/// Spot instance ids, apart from the scale-in fleet's.
pub(super) fn spot_id(j: usize) -> String {
    format!("i-0{:016x}", 0x5a0f_0000_0000 + j as u64)
}

/// The stories of a seed (none in a third of them), their instances created in `aws`: in group
/// g1 (rebalance stories) or in no group (Spot stop and hibernate are for instances outside
/// Auto Scaling), each with a container instance in `cluster` and up to three tasks.
pub(super) fn stories(
    rng: &mut Rng,
    aws: &fleetguard::testing::FakeAws,
    cluster: &str,
    rebalance_undo: i64,
) -> Vec<Story> {
    if rng.random_bool(0.33) {
        return Vec::new();
    }
    (0..rng.random_range(1..=3))
        .map(|j| {
            let id = spot_id(j);
            let kind = match rng.random_range(0..4) {
                0 => Kind::RebalanceOnly,
                // Often just before the rebalance hold runs out: the warning's two minutes
                // straddle the moment a rebalance drain would be undone.
                1 => Kind::RebalanceThenTerminate {
                    after: if rng.random_bool(0.5) {
                        (rebalance_undo - rng.random_range(0..110)).max(10)
                    } else {
                        rng.random_range(10..3600)
                    },
                },
                2 => Kind::Stop {
                    hibernate: rng.random_bool(0.5),
                    back_after: rng.random_range(300..3600),
                },
                _ => Kind::UserStop {
                    after: rng.random_range(5..90),
                    back_after: rng.random_range(300..3600),
                },
            };
            let stop = matches!(kind, Kind::Stop { .. } | Kind::UserStop { .. });
            if !stop {
                aws.group_instance("g1", &id, "InService");
            }
            let plain = rng.random_bool(0.3);
            if plain {
                aws.target("web", &id, 80);
            } else {
                aws.container_instance(cluster, &id, "checkout-api", rng.random_range(0..4));
            }
            Story {
                id,
                kind,
                starts_at: T0 + rng.random_range(0..3600),
                warning_handled: false,
                taken: false,
                back_at: None,
                unmarked: false,
                over_at: None,
                plain,
                running_handled: false,
            }
        })
        .collect()
}

impl Sim {
    pub(super) fn schedule_stories(&mut self) {
        for j in 0..self.stories.len() {
            let (kind, at) = (self.stories[j].kind, self.stories[j].starts_at);
            match kind {
                Kind::RebalanceOnly => self.at(at, Ev::Spot(j, Step::Rebalance)),
                Kind::RebalanceThenTerminate { after } => {
                    self.at(at, Ev::Spot(j, Step::Rebalance));
                    self.at(at + after, Ev::Spot(j, Step::Warning));
                }
                Kind::Stop { .. } | Kind::UserStop { .. } => {
                    self.at(at, Ev::Spot(j, Step::Warning))
                }
            }
        }
    }

    /// Every story has run its course (and had time for its undo).
    pub(super) fn stories_done(&self) -> bool {
        self.stories.iter().all(|s| match s.kind {
            Kind::RebalanceThenTerminate { .. } => s.taken,
            _ if s.plain && !s.running_handled && s.back_at.is_some() => s
                .over_at
                .is_some_and(|t| self.now >= t + PLAIN_BACKSTOP_SECS + 900),
            _ => s.over_at.is_some_and(|t| self.now >= t + 900),
        })
    }

    pub(super) async fn spot_step(&mut self, j: usize, step: Step) {
        let id = self.stories[j].id.clone();
        match step {
            Step::Rebalance => {
                let e = self.envelope(
                    "EC2 Instance Rebalance Recommendation",
                    "aws.ec2",
                    json!({"instance-id": id}),
                );
                self.emit(e);
                if self.stories[j].kind == Kind::RebalanceOnly {
                    self.stories[j].over_at = Some(self.now + self.rebalance_undo);
                }
            }
            Step::Warning if matches!(self.stories[j].kind, Kind::UserStop { .. }) => {
                let Kind::UserStop { after, .. } = self.stories[j].kind else {
                    return;
                };
                self.stats.user_stops += 1;
                let e = self.envelope(
                    "EC2 Instance State-change Notification",
                    "aws.ec2",
                    json!({"instance-id": id, "state": "stopping"}),
                );
                self.emit(e);
                self.at(self.now + after, Ev::Spot(j, Step::Taken));
            }
            Step::Warning => {
                let action = match self.stories[j].kind {
                    Kind::Stop {
                        hibernate: true, ..
                    } => "hibernate",
                    Kind::Stop { .. } => "stop",
                    _ => "terminate",
                };
                self.stats.spot_warnings += 1;
                // A mass reclaim: Auto Scaling throttles.
                if self.rng.random_bool(0.5) {
                    self.aws.throttle("DescribeAutoScalingInstances", 1);
                }
                let e = self.envelope(
                    "EC2 Spot Instance Interruption Warning",
                    "aws.ec2",
                    json!({"instance-id": id, "instance-action": action}),
                );
                self.emit(e);
                self.at(self.now + 120, Ev::Spot(j, Step::Taken));
            }
            Step::Taken if self.stories[j].plain => {
                // Warned and handled: out of its target group when AWS stops or reclaims it.
                let registered = self.registered(&id);
                if !matches!(self.stories[j].kind, Kind::UserStop { .. })
                    && self.stories[j].warning_handled
                    && registered
                {
                    self.violations.push(format!(
                        "t+{}: AWS took plain Spot instance {id} ({:?}), warned and handled, but it is still registered",
                        self.now - T0,
                        self.stories[j].kind
                    ));
                }
                self.stories[j].taken = true;
                if matches!(self.stories[j].kind, Kind::RebalanceThenTerminate { .. }) {
                    // Terminated: ELB lets its targets go; it can never be registered again.
                    let mut w = self.aws.world();
                    w.terminated.insert(id.clone());
                    for t in w.targets.values_mut() {
                        t.retain(|(i, _)| i != &id);
                    }
                    w.group_instances.retain(|g| g.instance_id != id);
                    drop(w);
                    self.emit_state(&id, "shutting-down");
                    self.observe();
                    return;
                }
                // A stopped instance stays registered (unhealthy) unless someone deregistered
                // it: only what we took out is ours to put back.
                self.stats.plain_stops += 1;
                self.at(self.now + self.stop_back_after(j), Ev::Spot(j, Step::Back));
                self.emit_state(&id, "stopped");
            }
            Step::Taken => {
                let ci = self.container_instance_of(&id);
                // A stop without notice: nothing can be drained in time (checked: undone after).
                if !matches!(self.stories[j].kind, Kind::UserStop { .. })
                    && self.stories[j].warning_handled
                    && ci.as_ref().is_none_or(|c| c.status != "DRAINING")
                {
                    self.violations.push(format!(
                        "t+{}: AWS took Spot instance {id}, warned and handled, but its container instance is {:?}",
                        self.now - T0,
                        ci.map(|c| (c.status, c.drain_mark))
                    ));
                }
                self.stories[j].taken = true;
                // Whatever ran on it stops; the agent goes; its targets go.
                self.instance_goes(&id);
                {
                    let mut w = self.aws.world();
                    if !matches!(
                        self.stories[j].kind,
                        Kind::Stop { .. } | Kind::UserStop { .. }
                    ) {
                        // Terminated: out of its group and its cluster.
                        w.group_instances.retain(|g| g.instance_id != id);
                        w.container_instances.retain(|c| c.ec2_instance_id != id);
                    }
                }
                if let Kind::Stop { back_after, .. } | Kind::UserStop { back_after, .. } =
                    self.stories[j].kind
                {
                    let e = self.container_instance_event_of(&id);
                    self.emit(e);
                    if matches!(self.stories[j].kind, Kind::UserStop { .. }) {
                        self.emit_state(&id, "stopped");
                    }
                    self.at(self.now + back_after, Ev::Spot(j, Step::Back));
                }
            }
            Step::Back => {
                self.stories[j].back_at = Some(self.now);
                self.stories[j].over_at = Some(self.now);
                if !self.stories[j].plain {
                    self.set_agent(&id, true);
                    let e = self.container_instance_event_of(&id);
                    self.emit(e);
                }
                // EC2 says so on every start.
                self.emit_state(&id, "running");
            }
        }
        self.observe();
    }

    /// A Spot event for a story's instance returned without error: a warning was handled; a
    /// drain whose mark could not be written was said so (a documented limit: never undone).
    pub(super) fn spot_handled(
        &mut self,
        event: &serde_json::Value,
        summary: &fleetguard::serve::Summary,
    ) {
        let id = event["detail"]["instance-id"].as_str().unwrap_or_default();
        let warning = event["detail-type"] == "EC2 Spot Instance Interruption Warning";
        let running = event["detail-type"] == "EC2 Instance State-change Notification"
            && event["detail"]["state"] == "running";
        let unmarked = summary
            .actions
            .iter()
            .any(|a| a.ends_with("DRAINING, unmarked"));
        let now = self.now;
        for s in self.stories.iter_mut().filter(|s| s.id == id) {
            s.running_handled |= running && s.back_at.is_some_and(|b| b <= now);
            s.warning_handled |= warning;
            s.unmarked |= unmarked;
        }
    }

    /// Registered in a target group (not on its way out).
    fn registered(&self, id: &str) -> bool {
        self.aws
            .world()
            .targets
            .values()
            .flatten()
            .any(|(i, r)| i == id && r.state != "draining")
    }

    fn stop_back_after(&self, j: usize) -> i64 {
        match self.stories[j].kind {
            Kind::Stop { back_after, .. } | Kind::UserStop { back_after, .. } => back_after,
            _ => 0,
        }
    }

    /// EC2's state change of an instance, to `instance-maintenance`.
    fn emit_state(&mut self, id: &str, state: &str) {
        let e = self.envelope(
            "EC2 Instance State-change Notification",
            "aws.ec2",
            json!({"instance-id": id, "state": state}),
        );
        self.emit(e);
    }

    /// At the end: every drain whose reason is over was undone.
    pub(super) fn check_stories(&mut self) {
        for j in 0..self.stories.len() {
            let s = self.stories[j].clone();
            let Some(over) = s.over_at else { continue };
            if s.unmarked {
                self.stats.unmarked_told += 1;
            }
            if self.now < over + 600 {
                continue; // not enough time left in the run for its undo
            }
            // A stopped plain instance whose `running` was lost: the sweep's backstop.
            if s.plain && !s.running_handled && s.back_at.is_some() {
                if self.now < over + PLAIN_BACKSTOP_SECS + 900 {
                    continue;
                }
                self.stats.plain_running_lost += 1;
            }
            if s.plain {
                if !self.registered(&s.id) {
                    self.violations.push(format!(
                        "plain instance {} ({:?}): its reason was over at t+{}, but it is not registered in its target group again",
                        s.id,
                        s.kind,
                        over - T0
                    ));
                }
                continue;
            }
            let ci = self.container_instance_of(&s.id);
            if ci
                .as_ref()
                .is_none_or(|c| c.status != "ACTIVE" || c.drain_mark.is_some())
            {
                self.violations.push(format!(
                    "Spot instance {} ({:?}): its reason was over at t+{}, but its container instance is {:?} (ACTIVE, unmarked expected)",
                    s.id,
                    s.kind,
                    over - T0,
                    ci.map(|c| (c.status, c.drain_mark))
                ));
            }
        }
    }

    pub(super) fn container_instance_of(
        &self,
        id: &str,
    ) -> Option<fleetguard::ports::ContainerInstance> {
        self.aws
            .world()
            .container_instances
            .iter()
            .find(|c| c.ec2_instance_id == id)
            .cloned()
    }
}
