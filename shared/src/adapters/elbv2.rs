//! Elastic Load Balancing v2 adapter (feature `elbv2`): registrations, deregistration and registration.

use super::sdk_error;
use crate::ports::{AwsError, Registration, TargetGroups};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

#[derive(Debug, Clone)]
pub struct Elbv2 {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl Elbv2 {
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self { client }
    }
}

/// The registrations as one target list per target group, for one call each.
fn by_target_group<'a>(
    instance_id: &str,
    regs: &'a [Registration],
) -> Vec<(&'a str, Vec<TargetDescription>)> {
    let mut by_group: std::collections::BTreeMap<&str, Vec<TargetDescription>> = Default::default();
    for r in regs {
        by_group.entry(&r.target_group_arn).or_default().push(
            TargetDescription::builder()
                .id(instance_id)
                .set_port(r.port)
                .build(),
        );
    }
    by_group.into_iter().collect()
}

impl TargetGroups for Elbv2 {
    /// The instance's registrations in `target_group_arn` (one `DescribeTargetHealth`).
    async fn registrations(
        &self,
        target_group_arn: &str,
        instance_id: &str,
    ) -> Result<Vec<Registration>, AwsError> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTargetHealth", &e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter(|d| d.target().and_then(|t| t.id()) == Some(instance_id))
            .map(|d| Registration {
                target_group_arn: target_group_arn.to_owned(),
                port: d.target().and_then(|t| t.port()),
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .filter(|r| r.state != "unused")
            .collect())
    }

    /// Every registration in the target group that is not `unused`, by instance id
    /// (one `DescribeTargetHealth` for the whole group).
    async fn target_group_registrations(
        &self,
        target_group_arn: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<Registration>>, AwsError> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTargetHealth", &e))?;
        let mut by_instance: std::collections::BTreeMap<String, Vec<Registration>> =
            Default::default();
        for d in out.target_health_descriptions() {
            let Some(id) = d.target().and_then(|t| t.id()) else {
                continue;
            };
            let state = d
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            if state == "unused" {
                continue;
            }
            by_instance
                .entry(id.to_owned())
                .or_default()
                .push(Registration {
                    target_group_arn: target_group_arn.to_owned(),
                    port: d.target().and_then(|t| t.port()),
                    state,
                });
        }
        Ok(by_instance)
    }

    /// Deregister these registrations (one call per target group). Deregistering a target that
    /// is already gone succeeds, so this is safe to repeat.
    async fn deregister(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        for (tg, targets) in by_target_group(instance_id, regs) {
            self.client
                .deregister_targets()
                .target_group_arn(tg)
                .set_targets(Some(targets))
                .send()
                .await
                .map_err(|e| sdk_error("DeregisterTargets", &e))?;
        }
        Ok(())
    }

    /// Register these registrations again (one call per target group). Registering a target
    /// that is registered succeeds, so this is safe to repeat.
    async fn register(&self, instance_id: &str, regs: &[Registration]) -> Result<(), AwsError> {
        for (tg, targets) in by_target_group(instance_id, regs) {
            self.client
                .register_targets()
                .target_group_arn(tg)
                .set_targets(Some(targets))
                .send()
                .await
                .map_err(|e| sdk_error("RegisterTargets", &e))?;
        }
        Ok(())
    }
}
