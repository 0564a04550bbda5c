//! The evidence of a failed deployment, gathered when the event arrives (stopped tasks stay
//! listed about an hour). A lookup that fails is named in the message, never blocks it.

use fleetguard::ports::{Service, Services, Task, TaskDefinition};

/// Everything found about a failed deployment.
#[derive(Debug, Clone, Default)]
pub struct FailedDeployment {
    pub service: Option<Service>,
    pub new_task_definition: Option<TaskDefinition>,
    pub old_task_definition: Option<TaskDefinition>,
    /// Stopped tasks started by this deployment (`startedBy` = deployment id).
    pub stopped_tasks: Vec<Task>,
    /// What could not be found, and why.
    pub missing: Vec<String>,
}

/// Gather the evidence of a failed deployment: the service, its stopped tasks of this
/// deployment, and both task definitions.
pub async fn gather_failed<S: Services>(
    ecs: &S,
    cluster: &str,
    service: &str,
    deployment_id: &str,
) -> FailedDeployment {
    let mut f = FailedDeployment::default();
    let (svc, stopped) = tokio::join!(
        ecs.service(cluster, service),
        ecs.stopped_tasks_of_service(cluster, service, 3)
    );
    match svc {
        Ok(Some(s)) => f.service = Some(s),
        Ok(None) => f.missing.push("service details (service not found)".into()),
        Err(e) => f.missing.push(format!("service details ({e})")),
    }
    match stopped {
        Ok(tasks) => {
            f.stopped_tasks = tasks
                .into_iter()
                .filter(|t| t.started_by.as_deref() == Some(deployment_id))
                .collect();
            f.stopped_tasks
                .sort_by_key(|t| std::cmp::Reverse(t.stopped_at));
        }
        Err(e) => f.missing.push(format!("stopped tasks ({e})")),
    }
    let deployments = f
        .service
        .as_ref()
        .map(|s| s.deployments.as_slice())
        .unwrap_or_default();
    let new_arn = deployments
        .iter()
        .find(|d| d.id == deployment_id)
        .map(|d| d.task_definition_arn.clone())
        .or_else(|| {
            f.stopped_tasks
                .iter()
                .find_map(|t| t.task_definition_arn.clone())
        });
    // The other deployment: the rollback (PRIMARY) or the one still serving.
    let old_arn = deployments
        .iter()
        .filter(|d| d.id != deployment_id && Some(&d.task_definition_arn) != new_arn.as_ref())
        .min_by_key(|d| if d.status == "PRIMARY" { 0 } else { 1 })
        .map(|d| d.task_definition_arn.clone());
    let describe = |arn: Option<String>| async move {
        match arn {
            Some(a) => Some(ecs.task_definition(&a).await),
            None => None,
        }
    };
    let (new_td, old_td) = tokio::join!(describe(new_arn), describe(old_arn));
    match new_td {
        Some(Ok(td)) => f.new_task_definition = Some(td),
        Some(Err(e)) => f.missing.push(format!("new task definition ({e})")),
        None => f
            .missing
            .push("new task definition (not in the service or its stopped tasks)".into()),
    }
    match old_td {
        Some(Ok(td)) => f.old_task_definition = Some(td),
        Some(Err(e)) => f.missing.push(format!("previous task definition ({e})")),
        None => {}
    }
    f
}
