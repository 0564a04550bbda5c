//! Maintenance stories in the fleet simulator: AWS Health scheduled changes (reboot, stop) for
//! instances outside any scale-in, announced through EventBridge (late, lost, twice) to the real
//! `instance-maintenance`, with moved windows, duplicates, stale updates delivered late and the
//! close; EventBridge Scheduler's one-time schedules fire its payloads asynchronously (Lambda's
//! two retries, then the on-failure destination); AWS reboots or stops the instance when the
//! window starts, and it runs again after (a retirement: AWS terminates it, and it leaves its
//! cluster and group); `asg-lifecycle` (ECS events, sweeps) runs beside it.
//! `MAINTENANCE_ACTION` is `drain` or `replace` (half the seeds each). A retiring instance is in
//! g1 (our terminate hook) or g2 (another tool's only); replaced, it scales in through its group
//! like any other, under our hook (and is taken by its group, not at the window).
//!
//! Invariants:
//! - an instance whose window was announced in time (its last update handled at least the lead
//!   and ten minutes before the window) is DRAINING and runs no task when AWS takes it: nothing
//!   re-activated it before, and the drain finished;
//! - once the window is over and the instance runs again, its drain is undone (ACTIVE,
//!   unmarked at the end);
//! - nothing acts after the close: an update from before it, delivered after it, drains
//!   nothing;
//! - no instance is replaced through a group without our terminate hook (it is drained
//!   instead), nor terminated with a task running (the scale-in invariants).

use super::{Ev, Rng, Sim, T0};
use rand::RngExt;
use serde_json::json;

const LEAD: i64 = 1800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Reboot,
    /// Started again by its owner `back_after` seconds after AWS stopped it.
    Stop {
        back_after: i64,
    },
    /// Terminated by AWS at the window's start: never back.
    Retirement,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Reboot => "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
            Kind::Stop { .. } => "AWS_EC2_INSTANCE_STOP_SCHEDULED",
            Kind::Retirement => "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    /// An update of the Health event: window start, lastUpdatedTime, status closed.
    Update {
        start: i64,
        updated: i64,
        closed: bool,
    },
    /// AWS takes the instance (reboot or stop) at the window's start.
    Taken,
    /// The instance runs again.
    Back,
}

#[derive(Debug, Clone)]
pub(super) struct Story {
    pub id: String,
    pub kind: Kind,
    pub event_arn: String,
    /// The window's start AWS keeps to (the last update's).
    pub start: i64,
    /// The latest update's lastUpdatedTime, and when an invocation first handled it.
    pub latest: i64,
    pub latest_handled_at: Option<i64>,
    pub back_at: Option<i64>,
    /// Terminated at its window (a retirement): nothing to undo.
    pub retired: bool,
    /// Its group: g1 (our hooks) or, for a retirement now and then, g2 (no hook of ours).
    pub group: &'static str,
    /// Replaced through its group: its scale-in is the fleet's (`Sim::instances`).
    pub replaced: bool,
    /// How many drain calls the world had seen when an invocation first handled the close:
    /// none after it may be of this instance.
    pub closed_handled: Option<usize>,
}

impl Story {
    fn end(&self) -> i64 {
        self.start + 7200
    }
}

pub(super) fn maint_id(j: usize) -> String {
    format!("i-0{:016x}", 0x3a0f_0000_0000 + j as u64)
}

/// The stories of a seed (none in half of them); their instances in group g1, each with a
/// container instance in `cluster` running up to three tasks, behind no target group.
pub(super) fn stories(
    rng: &mut Rng,
    aws: &fleetguard::testing::FakeAws,
    cluster: &str,
) -> Vec<Story> {
    if rng.random_bool(0.5) {
        return Vec::new();
    }
    (0..rng.random_range(1..=2))
        .map(|j| {
            let id = maint_id(j);
            let kind = match rng.random_range(0..5) {
                0 | 1 => Kind::Reboot,
                2 | 3 => Kind::Stop {
                    back_after: rng.random_range(600..2 * 3600),
                },
                _ => Kind::Retirement,
            };
            let group = if kind == Kind::Retirement && rng.random_bool(0.5) {
                "g2"
            } else {
                "g1"
            };
            aws.group_instance(group, &id, "InService");
            aws.container_instance(cluster, &id, "checkout-api", rng.random_range(0..4));
            Story {
                id,
                kind,
                event_arn: format!(
                    "arn:aws:health:us-east-1::event/EC2/{}/sim-{j}",
                    kind.code()
                ),
                start: 0,
                latest: 0,
                latest_handled_at: None,
                back_at: None,
                retired: false,
                group,
                replaced: false,
                closed_handled: None,
            }
        })
        .collect()
}

fn rfc2822(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc2822()
        .replace("+0000", "GMT")
}

impl Sim {
    /// Each story's updates: announced, perhaps moved later (its first announcement delivered
    /// late, after the move, now and then), perhaps sent twice; closed after the window.
    pub(super) fn schedule_maintenance(&mut self) {
        for j in 0..self.maintenance.len() {
            let announced = T0 + self.rng.random_range(0..1800);
            let mut start = announced + self.rng.random_range(2 * 3600..3 * 3600);
            let mut updated = announced;
            self.at(
                announced,
                Ev::Maint(
                    j,
                    Step::Update {
                        start,
                        updated,
                        closed: false,
                    },
                ),
            );
            if self.rng.random_bool(0.4) {
                let first = (start, updated);
                start += 3600;
                updated += self.rng.random_range(60..1800);
                self.at(
                    updated,
                    Ev::Maint(
                        j,
                        Step::Update {
                            start,
                            updated,
                            closed: false,
                        },
                    ),
                );
                if self.rng.random_bool(0.5) {
                    // The first announcement again, late: stale.
                    let t = updated + self.rng.random_range(1..600);
                    self.at(
                        t,
                        Ev::Maint(
                            j,
                            Step::Update {
                                start: first.0,
                                updated: first.1,
                                closed: false,
                            },
                        ),
                    );
                }
            }
            self.maintenance[j].start = start;
            self.maintenance[j].latest = updated;
            self.at(start, Ev::Maint(j, Step::Taken));
            let closed_at = start + 7200 + self.rng.random_range(60..1800);
            self.at(
                closed_at,
                Ev::Maint(
                    j,
                    Step::Update {
                        start,
                        updated: closed_at,
                        closed: true,
                    },
                ),
            );
            // Now and then an update from before the close is delivered after it: stale.
            if self.rng.random_bool(0.3) {
                let t = closed_at + self.rng.random_range(60..1800);
                self.at(
                    t,
                    Ev::Maint(
                        j,
                        Step::Update {
                            start,
                            updated: announced,
                            closed: false,
                        },
                    ),
                );
            }
        }
    }

    pub(super) fn maintenance_done(&self) -> bool {
        self.maintenance
            .iter()
            .all(|s| s.back_at.is_some_and(|b| self.now >= b.max(s.end()) + 1800))
    }

    pub(super) async fn maintenance_step(&mut self, j: usize, step: Step) {
        let s = self.maintenance[j].clone();
        match step {
            Step::Update {
                start,
                updated,
                closed,
            } => {
                let mut detail = json!({
                    "eventArn": s.event_arn,
                    "service": "EC2",
                    "eventTypeCode": s.kind.code(),
                    "eventTypeCategory": "scheduledChange",
                    "statusCode": if closed { "closed" } else { "upcoming" },
                    "startTime": rfc2822(start),
                    "lastUpdatedTime": rfc2822(updated),
                    "eventRegion": "us-east-1",
                    "affectedEntities": [{"entityValue": s.id}],
                });
                if s.kind == Kind::Reboot {
                    detail["endTime"] = json!(rfc2822(start + 7200));
                }
                let mut e = self.envelope("AWS Health Event", "aws.health", detail);
                e["resources"] = json!([s.id]);
                self.emit(e);
            }
            Step::Taken if s.replaced => {}
            Step::Taken => {
                let ci = self.container_instance_of(&s.id);
                let in_time = s
                    .latest_handled_at
                    .is_some_and(|t| t <= s.start - LEAD - 600);
                if in_time
                    && ci
                        .as_ref()
                        .is_some_and(|c| c.status != "DRAINING" || c.running_tasks_count > 0)
                {
                    self.violations.push(format!(
                        "t+{}: AWS took {} for its {:?}, announced in time, but its container instance is {:?}",
                        self.now - T0,
                        s.id,
                        s.kind,
                        ci.map(|c| (c.status, c.running_tasks_count, c.drain_mark))
                    ));
                }
                self.stats.maintenance_windows += 1;
                self.aws.stop_tasks_of(&s.id);
                self.set_agent(&s.id, false);
                let e = self.container_instance_event_of(&s.id);
                self.emit(e);
                let back = match s.kind {
                    Kind::Reboot => 300,
                    Kind::Stop { back_after } => back_after,
                    Kind::Retirement => {
                        // Terminated: out of its cluster and its group, for good.
                        let mut w = self.aws.world();
                        w.container_instances.retain(|c| c.ec2_instance_id != s.id);
                        w.group_instances.retain(|g| g.instance_id != s.id);
                        drop(w);
                        self.maintenance[j].back_at = Some(self.now);
                        self.maintenance[j].retired = true;
                        self.stats.retirements += 1;
                        self.observe();
                        return;
                    }
                };
                self.at(self.now + back, Ev::Maint(j, Step::Back));
            }
            Step::Back => {
                self.maintenance[j].back_at = Some(self.now);
                self.set_agent(&s.id, true);
                let e = self.container_instance_event_of(&s.id);
                self.emit(e);
            }
        }
        self.observe();
    }

    /// Tasks on a maintenance instance stop some time after it is set DRAINING (ECS moves
    /// them); called as the simulator observes.
    pub(super) fn maintenance_tasks_stop(&mut self) {
        for j in 0..self.maintenance.len() {
            let id = self.maintenance[j].id.clone();
            let draining = self
                .container_instance_of(&id)
                .is_some_and(|c| c.status == "DRAINING" && c.running_tasks_count > 0);
            if draining && !self.maintenance_stopping.contains(&j) {
                self.maintenance_stopping.insert(j);
                let t = self.now + self.rng.random_range(5..600);
                self.at(t, Ev::MaintTasksStop(j));
            }
        }
    }

    pub(super) fn maintenance_tasks_stopped(&mut self, j: usize) {
        self.maintenance_stopping.remove(&j);
        let id = self.maintenance[j].id.clone();
        if self
            .container_instance_of(&id)
            .is_some_and(|c| c.status == "DRAINING")
        {
            self.aws.stop_tasks_of(&id);
            let e = self.container_instance_event_of(&id);
            self.emit(e);
        }
    }

    /// An invocation of instance-maintenance returned without error.
    pub(super) fn maintenance_handled(&mut self, event: &serde_json::Value) {
        if event["detail-type"] != "AWS Health Event" {
            return;
        }
        let arn = event["detail"]["eventArn"].as_str().unwrap_or_default();
        let updated = event["detail"]["lastUpdatedTime"]
            .as_str()
            .and_then(fleetguard::events::health::parse_health_time)
            .map(|t| t.timestamp());
        let now = self.now;
        let closed = event["detail"]["statusCode"] == "closed";
        let calls = self.aws.world().drain_calls.len();
        for s in self.maintenance.iter_mut().filter(|s| s.event_arn == arn) {
            if closed && s.closed_handled.is_none() {
                s.closed_handled = Some(calls);
            }
            if updated == Some(s.latest) && s.latest_handled_at.is_none() {
                s.latest_handled_at = Some(now);
            }
        }
    }

    /// EventBridge Scheduler: every schedule due by now fires once (deleted after it ran) and
    /// invokes asynchronously (Lambda's two retries).
    pub(super) fn fire_schedules(&mut self) {
        let due: Vec<String> = {
            let mut w = self.aws.world();
            let names: Vec<String> = w
                .schedules
                .values()
                .filter(|s| s.at <= self.now)
                .map(|s| s.name.clone())
                .collect();
            names
                .iter()
                .filter_map(|n| w.schedules.remove(n))
                .map(|s| s.input)
                .collect()
        };
        for input in due {
            self.stats.schedules_fired += 1;
            self.at(self.now, Ev::Invoke(input, 0));
        }
    }

    /// Instances `instance-maintenance` terminated through their group: only where our
    /// terminate hook holds them; then their scale-in is the fleet's, checked as any other.
    pub(super) fn replacements(&mut self) {
        let new: Vec<String> = self.aws.world().replaced[self.seen_replaced..].to_vec();
        self.seen_replaced += new.len();
        for id in new {
            let Some(j) = self.maintenance.iter().position(|s| s.id == id) else {
                continue;
            };
            self.stats.replacements += 1;
            let group = self.maintenance[j].group;
            if group != "g1" {
                self.violations.push(format!(
                    "t+{}: {id} replaced through {group}, which has no terminate hook of ours",
                    self.now - T0
                ));
                continue;
            }
            self.maintenance[j].replaced = true;
            self.maintenance[j].retired = true;
            self.maintenance[j].back_at = Some(self.now);
            let tasks = self
                .container_instance_of(&id)
                .map_or(0, |c| c.running_tasks_count.max(0) as usize);
            let stop_after = (0..tasks).map(|_| self.rng.random_range(5..600)).collect();
            self.instances.push(super::Instance {
                id,
                group: group.to_owned(),
                tasks,
                stop_after,
                scale_in_at: self.now,
                terminating_since: None,
                terminated: false,
                draining_seen: false,
                had_work: tasks > 0,
                warm: false,
                returned_at: None,
                target: false,
                target_gone_scheduled: false,
            });
            let i = self.instances.len() - 1;
            self.at(self.now, Ev::ScaleIn(i));
        }
    }

    /// At the end: once the window is over and the instance runs again, its drain is undone.
    pub(super) fn check_maintenance(&mut self) {
        for s in self.maintenance.clone() {
            // Nothing acts after the close: no drain of the instance after it was handled.
            if let Some(n) = s.closed_handled {
                let ci = format!("/{}", s.id);
                if self.aws.world().drain_calls[n..]
                    .iter()
                    .any(|(_, arn)| arn.ends_with(&ci))
                {
                    self.violations.push(format!(
                        "{} ({:?}): drained after its Health event closed",
                        s.id, s.kind
                    ));
                }
            }
            let Some(back) = s.back_at else { continue };
            if s.retired {
                continue;
            }
            if self.now < back.max(s.end()) + 900 {
                continue;
            }
            let ci = self.container_instance_of(&s.id);
            if ci
                .as_ref()
                .is_none_or(|c| c.status != "ACTIVE" || c.drain_mark.is_some())
            {
                self.violations.push(format!(
                    "{} ({:?}): its window ended at t+{} and it runs again since t+{}, but its container instance is {:?} (ACTIVE, unmarked expected)",
                    s.id,
                    s.kind,
                    s.end() - T0,
                    back - T0,
                    ci.map(|c| (c.status, c.drain_mark))
                ));
            }
        }
    }
}
