//! What the functions did, checked against the rules: as the simulator observes, and at the end.

use super::*;

impl Sim {
    /// What the function did to AWS since the last look: checked against the rules.
    pub(super) fn observe(&mut self) {
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
    pub(super) fn terminate_what_proceeds(&mut self) {
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
                self.instance_goes(&id);
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

    pub(super) fn budget_cap(&self, group: &str) -> i64 {
        let t = self.timeouts[group];
        asg_lifecycle::decide::effective_budget_secs(i64::MAX, t)
    }

    pub(super) fn running_tasks(&self, i: usize) -> usize {
        let id = &self.instances[i].id;
        self.aws
            .world()
            .tasks
            .iter()
            .filter(|(_, ci, t)| ci.ends_with(&format!("/{id}")) && t.last_status != "STOPPED")
            .count()
    }

    pub(super) fn registered_targets(&self, i: usize) -> usize {
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
    pub(super) fn count_unmarked(&mut self) {
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
    pub(super) fn check_drain_before_message(&mut self) {
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
    pub(super) fn landed_ended(&self, group: &str, instance: &str) -> usize {
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

    pub(super) fn delivered(&self, kind: NotificationKind, group: &str, instance: &str) -> bool {
        let key = format!("{}|{group}|{instance}", asg_lifecycle::render::DRAIN_ENDED);
        self.asg
            .lifecycle
            .notifier
            .sent()
            .iter()
            .any(|n| n.kind == kind && n.dedupe_key == key)
    }

    /// Hooks whose timer runs out before `until`: AWS applies the default result.
    pub(super) fn expire_hooks(&mut self, until: i64) {
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

    pub(super) fn finish(&mut self) {
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
            // Or kept by the on-failure destination: an event about this instance whose last
            // attempt failed for that very message (the documented limit: two deliveries whose
            // outcome was unknown, and none sent a third time).
            let kept = self.dead_letters.iter().any(|(payload, error)| {
                payload.contains(&id)
                    && ["drain-completed", "drain-forced"]
                        .iter()
                        .any(|k| error.contains(&format!("{k} notification not delivered")))
            });
            if x.had_work && !(drained || forced || kept) {
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
