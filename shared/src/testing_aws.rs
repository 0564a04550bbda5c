//! The ELBv2, EventBridge Scheduler and Auto Scaling ports of [`FakeAws`].

use super::*;

impl TargetGroups for FakeAws {
    async fn registrations(
        &self,
        target_group_arn: &str,
        instance_id: &str,
    ) -> Result<Vec<Registration>, AwsError> {
        let w = self.call("DescribeTargetHealth").await?;
        Ok(w.targets
            .get(target_group_arn)
            .map(|t| {
                t.iter()
                    .filter(|(i, _)| i == instance_id)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn target_group_registrations(
        &self,
        target_group_arn: &str,
    ) -> Result<BTreeMap<String, Vec<Registration>>, AwsError> {
        let w = self.call("DescribeTargetHealth").await?;
        let mut out: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
        for (i, r) in w.targets.get(target_group_arn).into_iter().flatten() {
            out.entry(i.clone()).or_default().push(r.clone());
        }
        Ok(out)
    }

    async fn deregister(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        let mut w = self.call("DeregisterTargets").await?;
        let delay = w.deregistration_delay;
        for r in regs {
            if let Some(t) = w.targets.get_mut(&r.target_group_arn) {
                if delay {
                    for (_, x) in t
                        .iter_mut()
                        .filter(|(i, x)| i == instance_id && x.port == r.port)
                    {
                        x.state = "draining".into();
                    }
                } else {
                    t.retain(|(i, x)| !(i == instance_id && x.port == r.port));
                }
            }
            w.deregistered
                .push((r.target_group_arn.clone(), instance_id.to_owned(), r.port));
        }
        Ok(())
    }

    async fn register(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        let mut w = self.call("RegisterTargets").await?;
        if w.terminated.contains(instance_id) {
            return Err(AwsError::service(
                "RegisterTargets",
                "InvalidTarget",
                "The specified target does not exist, is not in the same VPC as the target group, or has an unsupported instance type.",
            ));
        }
        for r in regs {
            let t = w.targets.entry(r.target_group_arn.clone()).or_default();
            t.retain(|(i, x)| !(i == instance_id && x.port == r.port));
            t.push((
                instance_id.to_owned(),
                Registration {
                    target_group_arn: r.target_group_arn.clone(),
                    port: r.port,
                    state: "initial".into(),
                },
            ));
            w.registered
                .push((r.target_group_arn.clone(), instance_id.to_owned(), r.port));
        }
        Ok(())
    }
}

impl Schedules for FakeAws {
    async fn schedule(&self, name: &str) -> Result<Option<OneTimeSchedule>, AwsError> {
        let w = self.call("GetSchedule").await?;
        Ok(w.schedules.get(name).cloned())
    }

    async fn put(&self, s: &OneTimeSchedule) -> Result<ScheduleWrite, AwsError> {
        let mut w = self.call("CreateSchedule").await?;
        let out = match w.schedules.get(&s.name) {
            None => ScheduleWrite::Created,
            Some(old) if old.at == s.at && old.input == s.input => ScheduleWrite::Unchanged,
            Some(_) => ScheduleWrite::Updated,
        };
        if out == ScheduleWrite::Updated {
            w.calls.push("UpdateSchedule");
        }
        w.schedules.insert(s.name.clone(), s.clone());
        Ok(out)
    }

    async fn delete(&self, name: &str) -> Result<bool, AwsError> {
        let mut w = self.call("DeleteSchedule").await?;
        Ok(w.schedules.remove(name).is_some())
    }
}

impl AutoScalingGroups for FakeAws {
    async fn terminate_and_replace(&self, instance_id: &str) -> Result<bool, AwsError> {
        let mut w = self.call("TerminateInstanceInAutoScalingGroup").await?;
        let Some(i) = w
            .group_instances
            .iter_mut()
            .find(|i| i.instance_id == instance_id)
        else {
            return Ok(false);
        };
        if i.lifecycle_state.starts_with("Terminating") {
            return Ok(false);
        }
        i.lifecycle_state = "Terminating".into();
        w.replaced.push(instance_id.to_owned());
        Ok(true)
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, AwsError> {
        let w = self.call("DescribeAutoScalingInstances").await?;
        Ok(w.group_instances
            .iter()
            .find(|i| i.instance_id == instance_id)
            .cloned())
    }

    async fn group(&self, name: &str) -> Result<Option<Group>, AwsError> {
        let w = self.call("DescribeAutoScalingGroups").await?;
        Ok(w.groups.iter().find(|g| g.name == name).cloned())
    }

    async fn groups(
        &self,
        names: &[String],
        tag: Option<(&str, Option<&str>)>,
    ) -> Result<Vec<GroupDetail>, AwsError> {
        let w = self.call("DescribeAutoScalingGroups").await?;
        Ok(w.groups
            .iter()
            .filter(|g| names.is_empty() || names.contains(&g.name))
            .filter(|g| {
                !names.is_empty()
                    || tag.is_none_or(|(k, v)| {
                        g.tags.get(k).is_some_and(|x| v.is_none_or(|v| v == x))
                    })
            })
            .map(|g| GroupDetail {
                group: g.clone(),
                instances: w
                    .group_instances
                    .iter()
                    .filter(|i| i.auto_scaling_group_name == g.name)
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    async fn hooks(&self, group: &str) -> Result<Vec<LifecycleHook>, AwsError> {
        let w = self.call("DescribeLifecycleHooks").await?;
        Ok(w.hooks.get(group).cloned().unwrap_or_default())
    }

    async fn complete(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
        token: Option<&str>,
        result: LifecycleActionResult,
    ) -> Result<Completion, AwsError> {
        let mut w = self.call("CompleteLifecycleAction").await?;
        let key = (group.to_owned(), hook.to_owned(), instance_id.to_owned());
        // A token names one action: another action of the same instance is not it.
        if token.is_some_and(|t| w.tokens.get(&key).is_some_and(|k| k != t)) {
            return Ok(Completion::AlreadyComplete);
        }
        if !w.pending.remove(&key) {
            return Ok(Completion::AlreadyComplete);
        }
        w.tokens.remove(&key);
        w.completions.push((key.0, key.1, key.2, result));
        // The last of the instance's pending actions lets it proceed.
        if !w.pending.iter().any(|(_, _, i)| i == instance_id) {
            for i in w
                .group_instances
                .iter_mut()
                .filter(|i| i.instance_id == instance_id)
            {
                i.lifecycle_state = i.lifecycle_state.replace(":Wait", ":Proceed");
            }
        }
        Ok(Completion::Completed)
    }

    async fn heartbeat(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
    ) -> Result<bool, AwsError> {
        let mut w = self.call("RecordLifecycleActionHeartbeat").await?;
        let key = (group.to_owned(), hook.to_owned(), instance_id.to_owned());
        if !w.pending.contains(&key) {
            return Ok(false);
        }
        w.heartbeats.push(key);
        Ok(true)
    }

    async fn activity_start_times(
        &self,
        _group: &str,
        wanted: &[(String, bool)],
        _max_pages: usize,
    ) -> Result<BTreeMap<String, i64>, AwsError> {
        let w = self.call("DescribeScalingActivities").await?;
        Ok(wanted
            .iter()
            .filter_map(|(i, t)| {
                w.activity_starts
                    .get(&(i.clone(), *t))
                    .map(|s| (i.clone(), *s))
            })
            .collect())
    }
}
