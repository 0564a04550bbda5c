//! The ECS ports of [`FakeAws`]: container instances, tasks, services, as ECS answers.

use super::*;

impl ContainerInstances for FakeAws {
    async fn clusters(
        &self,
        configured: &[String],
        refresh: bool,
    ) -> Result<Vec<String>, AwsError> {
        if let Some(named) = crate::ports::configured_clusters(configured) {
            return Ok(named);
        }
        let w = self.call("ListClusters").await?;
        match &w.stale_clusters {
            Some(stale) if !refresh => Ok(stale.clone()),
            _ => Ok(w.clusters.clone()),
        }
    }

    async fn find_container_instance(
        &self,
        cluster: &str,
        instance: &crate::ids::InstanceId,
    ) -> Result<Option<ContainerInstance>, AwsError> {
        let w = self.call("ListContainerInstances").await?;
        w.cluster_exists("ListContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .find(|c| {
                same_cluster(&c.cluster_arn, cluster) && c.ec2_instance_id == instance.as_str()
            })
            .cloned())
    }

    async fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let w = self.call("DescribeContainerInstances").await?;
        w.cluster_exists("DescribeContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| arns.contains(&c.arn))
            .cloned()
            .collect())
    }

    async fn container_instances(
        &self,
        cluster: &str,
        status: Option<&str>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let w = self.call("ListContainerInstances").await?;
        w.cluster_exists("ListContainerInstances", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| same_cluster(&c.cluster_arn, cluster))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .cloned()
            .collect())
    }

    async fn drain_all(
        &self,
        cis: Vec<(ContainerInstance, Option<DrainMark>)>,
    ) -> Vec<(String, Result<DrainResult, AwsError>)> {
        // As the adapter: ten a call per cluster, marks beside them.
        let mut out = Vec::new();
        let mut by_cluster: BTreeMap<String, Vec<(ContainerInstance, Option<DrainMark>)>> =
            BTreeMap::new();
        for (ci, mark) in cis {
            by_cluster
                .entry(ci.cluster_arn.clone())
                .or_default()
                .push((ci, mark));
        }
        for chunk in by_cluster.values().flat_map(|v| v.chunks(10)) {
            let wanted: Vec<(&ContainerInstance, bool, Option<DrainMark>)> = chunk
                .iter()
                .map(|(ci, m)| {
                    let (d, m) = drain_needs(ci, *m);
                    (ci, d, m)
                })
                .collect();
            // As the adapter: the marks first (a refused call of several tried again one by one).
            let marks: Vec<(&str, DrainMark)> = wanted
                .iter()
                .filter_map(|w| Some((w.0.arn.as_str(), w.2?)))
                .collect();
            let mut mark_failed: BTreeMap<&str, AwsError> = BTreeMap::new();
            if !marks.is_empty()
                && let Err(e) = self.put_marks(&marks).await
            {
                if marks.len() == 1 {
                    mark_failed.insert(marks[0].0, e);
                } else {
                    for one in &marks {
                        if let Err(e) = self.put_marks(std::slice::from_ref(one)).await {
                            mark_failed.insert(one.0, e);
                        }
                    }
                }
            }
            // Then the drain, whatever became of the marks.
            let to_drain: Vec<&str> = wanted
                .iter()
                .filter(|w| w.1)
                .map(|w| w.0.arn.as_str())
                .collect();
            let update = if to_drain.is_empty() {
                Ok(())
            } else {
                {
                    let t = crate::notify::destinations::fake::tick();
                    let mut w = self.world();
                    for arn in &to_drain {
                        w.drain_calls.push((t, (*arn).to_owned()));
                    }
                }
                self.call("UpdateContainerInstancesState")
                    .await
                    .map(|mut w| {
                        for c in w.container_instances.iter_mut() {
                            if to_drain.contains(&c.arn.as_str()) {
                                c.status = "DRAINING".into();
                            }
                        }
                    })
            };
            // As the adapter: a mark that failed other than at the limit is tried once more.
            let again: Vec<(&str, DrainMark)> = marks
                .iter()
                .filter(|(arn, _)| {
                    mark_failed.get(arn).is_some_and(|e| {
                        e.code.as_deref() != Some("AttributeLimitExceededException")
                    })
                })
                .copied()
                .collect();
            for one in &again {
                if self.put_marks(std::slice::from_ref(one)).await.is_ok() {
                    mark_failed.remove(one.0);
                }
            }
            for (ci, drain, mark) in wanted {
                let marked = match (mark, mark_failed.remove(ci.arn.as_str())) {
                    (Some(_), Some(e)) => Err(e),
                    _ => Ok(()),
                };
                let r = match (drain, &update, marked) {
                    (true, Err(e), _) => Err(e.clone()),
                    (true, Ok(()), Ok(())) => Ok(DrainResult::Drained),
                    (true, Ok(()), Err(_)) => Ok(DrainResult::DrainedUnmarked),
                    (false, _, Err(e))
                        if e.code.as_deref() == Some("AttributeLimitExceededException") =>
                    {
                        Ok(DrainResult::AlreadyDraining)
                    }
                    (false, _, Err(e)) => Err(e),
                    (false, _, Ok(())) => Ok(DrainResult::AlreadyDraining),
                };
                out.push((ci.arn.clone(), r));
            }
        }
        out
    }

    async fn activate(&self, ci: &ContainerInstance) -> Result<(), AwsError> {
        if ci.status != "ACTIVE" {
            let mut w = self.call("UpdateContainerInstancesState").await?;
            for c in w.container_instances.iter_mut().filter(|c| c.arn == ci.arn) {
                c.status = "ACTIVE".into();
            }
            w.activated.push(ci.arn.clone());
            drop(w);
        }
        let mut w = self.call("DeleteAttributes").await?;
        for c in w.container_instances.iter_mut().filter(|c| c.arn == ci.arn) {
            c.drain_mark = None;
        }
        Ok(())
    }

    async fn marked(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let w = self.call("ListAttributes").await?;
        w.cluster_exists("ListAttributes", cluster)?;
        Ok(w.container_instances
            .iter()
            .filter(|c| same_cluster(&c.cluster_arn, cluster) && c.drain_mark.is_some())
            .map(|c| c.arn.clone())
            .collect())
    }

    async fn tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
        desired: &str,
    ) -> Result<Vec<Task>, AwsError> {
        let w = self.call("ListTasks").await?;
        Ok(w.tasks
            .iter()
            .filter(|(c, ci, t)| {
                same_cluster(c, cluster) && ci == container_instance && t.desired_status == desired
            })
            .map(|(_, _, t)| t.clone())
            .collect())
    }

    async fn service_events(
        &self,
        _cluster: &str,
        services: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, AwsError> {
        let w = self.call("DescribeServices").await?;
        Ok(w.services
            .iter()
            .filter(|s| services.contains(&s.name))
            .map(|s| {
                (
                    s.name.clone(),
                    s.events
                        .iter()
                        .take(limit)
                        .map(|(_, m)| m.clone())
                        .collect(),
                )
            })
            .collect())
    }
}

impl Services for FakeAws {
    async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>, AwsError> {
        let w = self.call("DescribeServices").await?;
        Ok(w.services
            .iter()
            .find(|s| s.name == service && same_cluster(&s.cluster_arn, cluster))
            .cloned())
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let w = self.call("DescribeTaskDefinition").await?;
        w.task_definitions.get(arn).cloned().ok_or_else(|| {
            AwsError::service(
                "DescribeTaskDefinition",
                "ClientException",
                "Unable to describe task definition.",
            )
        })
    }

    async fn stopped_tasks_of_service(
        &self,
        cluster: &str,
        service: &str,
        _max_pages: usize,
    ) -> Result<Vec<Task>, AwsError> {
        let w = self.call("ListTasks").await?;
        let key = (
            cluster.rsplit('/').next().unwrap_or(cluster).to_owned(),
            service.to_owned(),
        );
        Ok(w.stopped_tasks.get(&key).cloned().unwrap_or_default())
    }
}
