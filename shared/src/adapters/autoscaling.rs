//! Auto Scaling: which group an instance is in, and the group's tags and target groups.

use super::AwsError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub instance_id: String,
    pub auto_scaling_group_name: String,
    pub availability_zone: Option<String>,
    pub instance_type: Option<String>,
    /// `InService`, `Terminating:Wait`, `Pending:Wait`, …
    pub lifecycle_state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub target_group_arns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScaling {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &aws_sdk_autoscaling::Client {
        &self.client
    }

    /// The instance's group, or `None` when it is in no Auto Scaling group.
    pub async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, AwsError> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeAutoScalingInstances", &e))?;
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

    pub async fn group(&self, name: &str) -> Result<Option<Group>, AwsError> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeAutoScalingGroups", &e))?;
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
}
