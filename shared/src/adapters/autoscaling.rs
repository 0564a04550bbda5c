//! Auto Scaling adapter (feature `autoscaling`): groups, instances, hooks and lifecycle actions.

use super::sdk_error;
use crate::ports::{
    AutoScalingGroups, AwsError, Completion, Group, GroupDetail, GroupInstance,
    LifecycleActionResult, LifecycleHook,
};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScaling {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }
}

impl AutoScalingGroups for AutoScaling {
    /// The instance's group, or `None` when it is in no Auto Scaling group.
    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, AwsError> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeAutoScalingInstances", &e))?;
        Ok(out
            .auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id))
            .map(|i| GroupInstance {
                instance_id: instance_id.to_owned(),
                auto_scaling_group_name: i.auto_scaling_group_name().unwrap_or_default().to_owned(),
                availability_zone: i.availability_zone().map(str::to_owned),
                instance_type: i.instance_type().map(str::to_owned),
                lifecycle_state: i.lifecycle_state().unwrap_or_default().to_owned(),
            }))
    }

    async fn group(&self, name: &str) -> Result<Option<Group>, AwsError> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeAutoScalingGroups", &e))?;
        Ok(out.auto_scaling_groups().first().map(|g| Group {
            name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
            tags: g
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            target_group_arns: g.target_group_arns().to_vec(),
        }))
    }

    /// Complete by the action's token when given, else by instance id. Completing an action that
    /// is already complete (or no longer the one the token names) counts as done.
    async fn complete(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
        token: Option<&str>,
        result: LifecycleActionResult,
    ) -> Result<Completion, AwsError> {
        let req = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_action_result(result.as_str());
        let req = match token {
            // AWS takes the token alone or with the instance id; alone, it names exactly one
            // action, whatever the instance does since.
            Some(t) => req.lifecycle_action_token(t),
            None => req.instance_id(instance_id),
        };
        match req.send().await {
            Ok(_) => Ok(Completion::Completed),
            Err(e) => {
                let e = sdk_error("CompleteLifecycleAction", &e);
                if is_no_active_action(&e) {
                    Ok(Completion::AlreadyComplete)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Restart the hook's heartbeat timer. `false` when no action is pending any more.
    async fn heartbeat(
        &self,
        group: &str,
        hook: &str,
        instance_id: &str,
    ) -> Result<bool, AwsError> {
        match self
            .client
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .instance_id(instance_id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = sdk_error("RecordLifecycleActionHeartbeat", &e);
                if is_no_active_action(&e) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn terminate_and_replace(&self, instance_id: &str) -> Result<bool, AwsError> {
        match self
            .client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(false)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = sdk_error("TerminateInstanceInAutoScalingGroup", &e);
                // Already terminating, or gone from its group: the replacement is under way.
                let m = e.message.to_ascii_lowercase();
                if e.code.as_deref() == Some("ValidationError")
                    && (m.contains("terminat") || m.contains("not found") || m.contains("not part"))
                {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn hooks(&self, group: &str) -> Result<Vec<LifecycleHook>, AwsError> {
        let out = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeLifecycleHooks", &e))?;
        Ok(out
            .lifecycle_hooks()
            .iter()
            .map(|h| LifecycleHook {
                name: h.lifecycle_hook_name().unwrap_or_default().to_owned(),
                transition: h.lifecycle_transition().unwrap_or_default().to_owned(),
                heartbeat_timeout_secs: h.heartbeat_timeout().unwrap_or(3600) as i64,
                default_result: h.default_result().unwrap_or("ABANDON").to_owned(),
                notification_metadata: h.notification_metadata().map(str::to_owned),
            })
            .collect())
    }

    /// The named groups, or every group carrying `tag` (key, and value when given), or every
    /// group: all pages, 100 groups a call, each with its instances' lifecycle states.
    async fn groups(
        &self,
        names: &[String],
        tag: Option<(&str, Option<&str>)>,
    ) -> Result<Vec<GroupDetail>, AwsError> {
        use aws_sdk_autoscaling::types::Filter;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let mut req = self
                .client
                .describe_auto_scaling_groups()
                .max_records(100)
                .set_next_token(token);
            if !names.is_empty() {
                req = req.set_auto_scaling_group_names(Some(names.to_vec()));
            } else if let Some((key, value)) = tag {
                req = req.filters(Filter::builder().name("tag-key").values(key).build());
                if let Some(v) = value {
                    req = req.filters(
                        Filter::builder()
                            .name(format!("tag:{key}"))
                            .values(v)
                            .build(),
                    );
                }
            }
            let page = req
                .send()
                .await
                .map_err(|e| sdk_error("DescribeAutoScalingGroups", &e))?;
            for g in page.auto_scaling_groups() {
                let name = g.auto_scaling_group_name().unwrap_or_default().to_owned();
                let group = Group {
                    name: name.clone(),
                    tags: g
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                t.key()?.to_owned(),
                                t.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                    target_group_arns: g.target_group_arns().to_vec(),
                };
                // The tag filter is applied again here: a filter an endpoint ignores must not widen
                // what is managed.
                if names.is_empty()
                    && let Some((key, value)) = tag
                    && group
                        .tags
                        .get(key)
                        .is_none_or(|v| value.is_some_and(|w| w != v))
                {
                    continue;
                }
                let mut instances: Vec<GroupInstance> = g
                    .instances()
                    .iter()
                    .map(|i| group_instance(&name, i))
                    .collect();
                // Instances scaling in back to the warm pool wait in `Warmed:Pending:Wait`,
                // listed only by `DescribeWarmPool`.
                if g.warm_pool_configuration().is_some() {
                    instances.extend(self.warm_pool(&name).await?);
                }
                out.push(GroupDetail { group, instances });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// When each instance's launch or termination started, from the group's scaling activities
    /// (newest first; paging stops once every instance asked for is found, or after `max_pages`).
    /// Epoch seconds.
    async fn activity_start_times(
        &self,
        group: &str,
        wanted: &[(String, bool)],
        max_pages: usize,
    ) -> Result<BTreeMap<String, i64>, AwsError> {
        let mut found = BTreeMap::new();
        let mut token = None;
        for _ in 0..max_pages {
            let page = self
                .client
                .describe_scaling_activities()
                .auto_scaling_group_name(group)
                .max_records(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeScalingActivities", &e))?;
            for a in page.activities() {
                let text = a.description().unwrap_or_default();
                let Some(start) = a.start_time() else {
                    continue;
                };
                for (id, terminating) in wanted {
                    let verb = if *terminating {
                        "Terminating"
                    } else {
                        "Launching"
                    };
                    if !found.contains_key(id) && text.contains(id.as_str()) && text.contains(verb)
                    {
                        found.insert(id.clone(), start.secs());
                    }
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() || found.len() == wanted.len() {
                break;
            }
        }
        Ok(found)
    }
}

impl AutoScaling {
    /// The instances of a group's warm pool (`DescribeWarmPool`, all pages).
    async fn warm_pool(&self, group: &str) -> Result<Vec<GroupInstance>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .describe_warm_pool()
                .auto_scaling_group_name(group)
                .max_records(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeWarmPool", &e))?;
            out.extend(page.instances().iter().map(|i| group_instance(group, i)));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

/// A group's instance (`DescribeAutoScalingGroups` and `DescribeWarmPool` list the same type).
fn group_instance(group: &str, i: &aws_sdk_autoscaling::types::Instance) -> GroupInstance {
    GroupInstance {
        instance_id: i.instance_id().unwrap_or_default().to_owned(),
        auto_scaling_group_name: group.to_owned(),
        availability_zone: i.availability_zone().map(str::to_owned),
        instance_type: i.instance_type().map(str::to_owned),
        lifecycle_state: i
            .lifecycle_state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    }
}

fn is_no_active_action(e: &AwsError) -> bool {
    e.message.contains("No active Lifecycle Action")
}
