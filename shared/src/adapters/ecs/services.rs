//! ECS services and task definitions, for ecs-deployment's evidence and asg-lifecycle's
//! forced-drain messages.

use super::*;

impl Services for Ecs {
    async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>, AwsError> {
        let d = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeServices", &e))?;
        Ok(d.services().first().map(|s| Service {
            name: s.service_name().unwrap_or_default().to_owned(),
            cluster_arn: s.cluster_arn().unwrap_or(cluster).to_owned(),
            deployments: s
                .deployments()
                .iter()
                .map(|d| Deployment {
                    id: d.id().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    task_definition_arn: d.task_definition().unwrap_or_default().to_owned(),
                    rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                    rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                    desired_count: d.desired_count(),
                    running_count: d.running_count(),
                    failed_tasks: d.failed_tasks(),
                })
                .collect(),
            circuit_breaker: s
                .deployment_configuration()
                .and_then(|c| c.deployment_circuit_breaker())
                .map(|b| (b.enable(), b.rollback())),
            events: s
                .events()
                .iter()
                .map(|e| {
                    (
                        e.created_at().map(|d| d.secs()),
                        e.message().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        }))
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let d = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTaskDefinition", &e))?;
        let td = d.task_definition().ok_or_else(|| {
            AwsError::other("DescribeTaskDefinition", "no task definition returned")
        })?;
        Ok(TaskDefinition {
            arn: td.task_definition_arn().unwrap_or(arn).to_owned(),
            family: td.family().unwrap_or_default().to_owned(),
            revision: td.revision(),
            containers: td
                .container_definitions()
                .iter()
                .map(|c| ContainerDefinition {
                    name: c.name().unwrap_or_default().to_owned(),
                    image: c.image().unwrap_or_default().to_owned(),
                    essential: c.essential().unwrap_or(true),
                    awslogs: c
                        .log_configuration()
                        .filter(|l| l.log_driver().as_str() == "awslogs")
                        .and_then(|l| {
                            let o = l.options()?;
                            Some((
                                o.get("awslogs-group")?.clone(),
                                o.get("awslogs-region").cloned(),
                                o.get("awslogs-stream-prefix").cloned(),
                            ))
                        }),
                })
                .collect(),
        })
    }

    /// The service's stopped tasks ECS still lists (about an hour), newest pages first, at most
    /// `max_pages` pages of 100, described.
    async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
        max_pages: usize,
    ) -> Result<Vec<Task>, AwsError> {
        let mut arns = Vec::new();
        let mut token = None;
        for _ in 0..max_pages {
            let out = self
                .client
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status("STOPPED".into())
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("ListTasks", &e))?;
            arns.extend(out.task_arns().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        self.describe_tasks(cluster, arns).await
    }
}
