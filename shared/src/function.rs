//! The four functions, which events each accepts, and the entry every handler goes through:
//! parse, log, count, then hand the typed event to the function's own logic.

use crate::alarm_fanout::{self, AlarmConfig, AlarmDecision};
use crate::aws::{Clients, Needs};
use crate::config::CommonConfig;
use crate::deployment::{self, DeploymentConfig, DeploymentVerdict};
use crate::events::{Detail, Event, EventKind, parse_value};
use crate::lifecycle::{Lifecycle, LifecycleConfig};
use crate::notify::{Deadline, Notifier};
use crate::observe::{Metrics, Outcome, event_span};
use crate::spot::{self, Plan, SpotConfig, SpotPorts};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    SpotInterruption,
    AsgLifecycle,
    EcsDeployment,
    AlarmFanout,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::SpotInterruption,
        Function::AsgLifecycle,
        Function::EcsDeployment,
        Function::AlarmFanout,
    ];

    /// The package, binary and Lambda function name.
    pub fn name(self) -> &'static str {
        match self {
            Function::SpotInterruption => "spot-interruption",
            Function::AsgLifecycle => "asg-lifecycle",
            Function::EcsDeployment => "ecs-deployment",
            Function::AlarmFanout => "alarm-fanout",
        }
    }

    /// The event kinds this function acts on; any other parsed event is acknowledged and skipped.
    pub fn accepts(self, kind: EventKind) -> bool {
        use EventKind::*;
        match self {
            Function::SpotInterruption => {
                matches!(kind, SpotInterruptionWarning | RebalanceRecommendation)
            }
            Function::AsgLifecycle => matches!(
                kind,
                LaunchLifecycleAction
                    | TerminateLifecycleAction
                    | OtherLifecycleAction
                    | AutoScalingTestNotification
                    | ContainerInstanceStateChange
                    | TaskStateChange
                    | Scheduled
            ),
            Function::EcsDeployment => matches!(
                kind,
                DeploymentStateChange | ServiceAction | TaskStateChange
            ),
            Function::AlarmFanout => matches!(
                kind,
                AlarmStateChange | AlarmContributorStateChange | AlarmConfigurationChange
            ),
        }
    }

    /// The AWS clients the function calls.
    pub fn needs(self) -> Needs {
        match self {
            Function::SpotInterruption | Function::AsgLifecycle => Needs {
                ecs: true,
                autoscaling: true,
                elbv2: true,
                sns: true,
            },
            Function::EcsDeployment => Needs {
                ecs: true,
                sns: true,
                ..Needs::default()
            },
            Function::AlarmFanout => Needs {
                sns: true,
                ..Needs::default()
            },
        }
    }
}

/// What an invocation did, returned to the caller (and shown by `cargo lambda invoke`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub function: &'static str,
    pub event_id: String,
    pub detail_type: String,
    pub kind: EventKind,
    pub subject: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
}

/// Everything a handler needs, built once in `main`.
#[derive(Debug, Clone)]
pub struct Context {
    pub function: Function,
    pub config: CommonConfig,
    pub clients: Clients,
    pub notifier: Notifier,
    pub alarms: AlarmConfig,
    /// `spot-interruption` only.
    pub spot: Option<(SpotConfig, SpotPorts)>,
    /// `asg-lifecycle` only.
    pub lifecycle: Option<Lifecycle>,
    /// `ecs-deployment` only.
    pub deployment: Option<(DeploymentConfig, crate::adapters::ecs::Ecs)>,
}

impl Context {
    pub async fn from_env(function: Function) -> Result<Self, crate::config::ConfigError> {
        let sdk = crate::aws::load_sdk_config().await;
        Self::from_lookup(function, |k| std::env::var(k).ok(), &sdk).await
    }

    /// Testable form: `lookup` stands in for the environment.
    pub async fn from_lookup(
        function: Function,
        lookup: impl Fn(&str) -> Option<String>,
        sdk: &crate::aws::SdkConfig,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::with_clients(function, lookup, sdk, Clients::build(sdk, function.needs())).await
    }

    /// As `from_lookup`, with the clients given (tests point one client elsewhere).
    pub async fn with_clients(
        function: Function,
        lookup: impl Fn(&str) -> Option<String>,
        sdk: &crate::aws::SdkConfig,
        clients: Clients,
    ) -> Result<Self, crate::config::ConfigError> {
        let common = CommonConfig::from_lookup(&lookup)?;
        let lifecycle = match function {
            Function::AsgLifecycle => Some(Lifecycle {
                ports: spot_ports(&clients),
                config: LifecycleConfig::from_lookup(&lookup)?,
                dry_run: common.dry_run,
            }),
            _ => None,
        };
        let deployment = match function {
            Function::EcsDeployment => Some((
                DeploymentConfig::from_lookup(&lookup)?,
                crate::adapters::ecs::Ecs::new(
                    clients
                        .ecs
                        .clone()
                        .expect("ecs-deployment builds an ECS client"),
                ),
            )),
            _ => None,
        };
        let spot = match function {
            Function::SpotInterruption => {
                Some((SpotConfig::from_lookup(&lookup)?, spot_ports(&clients)))
            }
            _ => None,
        };
        Ok(Self {
            function,
            config: common,
            lifecycle,
            deployment,
            notifier: Notifier::from_lookup(&lookup, sdk).await?,
            alarms: AlarmConfig::from_lookup(&lookup)?,
            clients,
            spot,
        })
    }
}

/// The ports `spot-interruption` acts through, from the clients it built.
pub fn spot_ports(clients: &Clients) -> SpotPorts {
    let missing = "spot-interruption builds ECS, ELBv2 and Auto Scaling clients";
    SpotPorts {
        ecs: crate::adapters::ecs::Ecs::new(clients.ecs.clone().expect(missing)),
        elbv2: crate::adapters::elbv2::Elbv2::new(clients.elbv2.clone().expect(missing)),
        autoscaling: crate::adapters::autoscaling::AutoScaling::new(
            clients.autoscaling.clone().expect(missing),
        ),
    }
}

/// Why an invocation failed: one line, never a secret. Lambda records `error_type` and the message,
/// retries the event, and the on-failure destination keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// `InvalidEvent` or `DeliveryFailed`.
    pub error_type: &'static str,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::events::ParseError> for Error {
    fn from(e: crate::events::ParseError) -> Self {
        Self {
            error_type: "InvalidEvent",
            message: e.to_string(),
        }
    }
}

impl From<crate::notify::DeliveryError> for Error {
    fn from(e: crate::notify::DeliveryError) -> Self {
        Self {
            error_type: "DeliveryFailed",
            message: e.to_string(),
        }
    }
}

impl From<crate::adapters::AwsError> for Error {
    fn from(e: crate::adapters::AwsError) -> Self {
        Self {
            error_type: "AwsCallFailed",
            message: e.to_string(),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

/// Handle one payload. Malformed input is an error (Lambda retries it and the on-failure
/// destination keeps it for inspection); unknown or foreign events are acknowledged; a
/// notification that did not reach every destination is an error naming the ones it missed.
pub async fn handle(ctx: &Context, payload: &Value, deadline: Deadline) -> Result<Summary, Error> {
    let mut metrics = Metrics::new(&ctx.config.metrics_namespace, ctx.function.name());
    let event = match parse_value(payload) {
        Ok(e) => e,
        Err(e) => {
            metrics.event_received(None);
            metrics.flush();
            tracing::error!(function = ctx.function.name(), error = %e, "rejected malformed event");
            return Err(e.into());
        }
    };
    metrics.event_received(Some(event.kind()));
    let span = event_span(ctx.function.name(), &event);
    let result = async {
        tracing::debug!(
            remaining_ms = deadline.remaining().as_millis() as u64,
            "invocation budget"
        );
        let summary = classify(ctx, &event);
        if summary.outcome != "parsed" {
            return Ok(summary);
        }
        match ctx.function {
            Function::AlarmFanout => {
                fan_out_alarm(ctx, &event, summary, deadline, &mut metrics).await
            }
            Function::SpotInterruption => {
                spot_interruption(ctx, &event, summary, deadline, &mut metrics).await
            }
            Function::AsgLifecycle => {
                asg_lifecycle(ctx, &event, summary, deadline, &mut metrics).await
            }
            Function::EcsDeployment => {
                ecs_deployment(ctx, &event, summary, deadline, &mut metrics).await
            }
        }
    }
    .instrument(span)
    .await;
    metrics.flush();
    result
}

async fn fan_out_alarm(
    ctx: &Context,
    event: &Event,
    mut summary: Summary,
    deadline: Deadline,
    metrics: &mut Metrics,
) -> Result<Summary, Error> {
    let alarm = match &event.detail {
        Detail::AlarmStateChange(a) | Detail::AlarmContributorStateChange(a) => a,
        _ => {
            tracing::info!("alarm configuration change: ignored");
            summary.outcome = "ignored: alarm configuration change".to_owned();
            return Ok(summary);
        }
    };
    if let AlarmDecision::Skip(why) = alarm_fanout::decide(alarm, &ctx.alarms) {
        tracing::info!(reason = %why, "alarm not notified");
        metrics.action("Notify", Outcome::Skipped);
        summary.outcome = format!("skipped: {why}");
        return Ok(summary);
    }
    let n = alarm_fanout::render(alarm).from_event(ctx.function.name(), event);
    match ctx.notifier.send(n, deadline).await {
        Ok(report) => {
            metrics.action("Notify", Outcome::Done);
            metrics.latency("Notify", event);
            summary.outcome = if report.route.dropped {
                format!("dropped by rule {}", report.route.rules.join(", "))
            } else {
                "notified".to_owned()
            };
            summary.actions = report.actions().collect();
            Ok(summary)
        }
        Err(e) => {
            metrics.action("Notify", Outcome::Failed);
            Err(e.into())
        }
    }
}

async fn spot_interruption(
    ctx: &Context,
    event: &Event,
    mut summary: Summary,
    deadline: Deadline,
    metrics: &mut Metrics,
) -> Result<Summary, Error> {
    let (config, ports) = ctx.spot.as_ref().expect("spot-interruption context");
    let interruption = match &event.detail {
        Detail::SpotInterruptionWarning(w) => spot::Interruption {
            instance_id: w.instance_id.clone(),
            action: Some(w.instance_action.clone()),
        },
        Detail::RebalanceRecommendation(r) => spot::Interruption {
            instance_id: r.instance_id.clone(),
            action: None,
        },
        _ => return Ok(summary),
    };
    if interruption.action.is_none() && config.rebalance == spot::RebalanceAction::Ignore {
        summary.outcome =
            "ignored: rebalance recommendations are ignored (REBALANCE_ACTION)".into();
        return Ok(summary);
    }
    // Not being able to look is a failure (Lambda retries), never "not found".
    let findings = spot::find(ports, config, &interruption.instance_id).await?;
    let plan = spot::decide(&interruption, &findings, config);
    let mut outcome = None;
    match &plan {
        Plan::Ignore(why) => {
            tracing::info!(reason = %why, "instance not managed here: acknowledged");
            summary.outcome = format!("ignored: {why}");
            return Ok(summary);
        }
        Plan::NotifyOnly => {}
        Plan::Drain { .. } if ctx.config.dry_run => {
            metrics.action("DrainInstance", Outcome::DryRun);
            summary.actions.push("dry run: nothing drained".into());
        }
        Plan::Drain { .. } => {
            let o = spot::drain(ports, &interruption.instance_id, &findings).await;
            metrics.latency("DrainInstance", event);
            if let (Some(r), Some(ci)) = (o.container_instance, &findings.container_instance) {
                let (text, m) = match r {
                    crate::adapters::ecs::DrainResult::Drained => ("DRAINING", Outcome::Done),
                    crate::adapters::ecs::DrainResult::AlreadyDraining => {
                        ("already DRAINING", Outcome::AlreadyDone)
                    }
                };
                metrics.action("DrainContainerInstance", m);
                summary
                    .actions
                    .push(format!("container instance {} {text}", ci.arn));
            }
            for r in &o.deregistered {
                metrics.action("DeregisterTargets", Outcome::Done);
                summary.actions.push(format!(
                    "deregistered from {} port {}",
                    r.target_group_arn,
                    r.port.map(|p| p.to_string()).unwrap_or("-".into())
                ));
            }
            if !o.errors.is_empty() {
                metrics.action("DrainInstance", Outcome::Failed);
                let msg: Vec<String> = o.errors.iter().map(ToString::to_string).collect();
                tracing::error!(errors = ?msg, "drain failed");
                return Err(Error {
                    error_type: "DrainFailed",
                    message: format!(
                        "could not drain {}: {}",
                        interruption.instance_id,
                        msg.join("; ")
                    ),
                });
            }
            outcome = Some(o);
        }
    }
    // Enrichment comes after the drain calls, and never blocks the message.
    let tasks = match &findings.container_instance {
        Some(ci) => match ports
            .ecs
            .tasks_on(&ci.cluster_arn, &ci.arn, "RUNNING")
            .await
        {
            Ok(t) => Some(crate::adapters::ecs::count_by_service(&t)),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the instance's tasks");
                None
            }
        },
        None => None,
    };
    let n = spot::render(
        &spot::Report {
            interruption: &interruption,
            findings: &findings,
            plan: &plan,
            outcome: outcome.as_ref(),
            tasks: tasks.as_ref(),
            dry_run: ctx.config.dry_run,
            seconds_left: spot::time_left(event, chrono::Utc::now()),
        },
        event,
    )
    .from_event(ctx.function.name(), event);
    let report = ctx.notifier.send(n, deadline).await?;
    summary.actions.extend(report.actions());
    summary.outcome = match (&plan, ctx.config.dry_run) {
        (Plan::Drain { .. }, false) => "drained".into(),
        (Plan::Drain { .. }, true) => "dry run".into(),
        _ => "notified".into(),
    };
    Ok(summary)
}

fn classify(ctx: &Context, event: &Event) -> Summary {
    let kind = event.kind();
    let outcome = if kind == EventKind::Unrecognised {
        tracing::info!("acknowledged an event this suite does not handle");
        "ignored: unrecognised event".to_owned()
    } else if !ctx.function.accepts(kind) {
        tracing::info!(kind = %kind, "acknowledged an event meant for another function");
        format!("ignored: {kind} is not handled by {}", ctx.function.name())
    } else {
        let detail = serde_json::to_string(&event.detail).unwrap_or_default();
        tracing::info!(kind = %kind, ingress = ?event.ingress, detail = %crate::text::excerpt(&detail, 4000), "parsed event");
        "parsed".to_owned()
    };
    Summary {
        function: ctx.function.name(),
        event_id: event.envelope.id.clone(),
        detail_type: event.envelope.detail_type.clone(),
        kind,
        subject: event.subject(),
        outcome,
        actions: Vec::new(),
    }
}

async fn asg_lifecycle(
    ctx: &Context,
    event: &Event,
    mut summary: Summary,
    deadline: Deadline,
    metrics: &mut Metrics,
) -> Result<Summary, Error> {
    let lc = ctx.lifecycle.as_ref().expect("asg-lifecycle context");
    let region = event.envelope.region.as_str();
    let out = match &event.detail {
        Detail::LifecycleAction(a) => lc.on_action(a, region).await?,
        Detail::AutoScalingTestNotification(_) => {
            summary.outcome = "ignored: autoscaling:TEST_NOTIFICATION".into();
            return Ok(summary);
        }
        Detail::ContainerInstanceStateChange(c) => {
            let Some(ec2) = &c.ec2_instance_id else {
                summary.outcome = "ignored: not an EC2 container instance".into();
                return Ok(summary);
            };
            let ci = crate::adapters::ecs::ContainerInstance {
                cluster_arn: c.cluster_arn.to_string(),
                arn: c.container_instance_arn.to_string(),
                ec2_instance_id: ec2.to_string(),
                status: c.status.to_string(),
                agent_connected: c.agent_connected.unwrap_or(false),
                running_tasks_count: c.running_tasks_count.unwrap_or(0) as i32,
                pending_tasks_count: c.pending_tasks_count.unwrap_or(0) as i32,
                instance_type: None,
                availability_zone: None,
            };
            lc.on_container_instance(ci, region).await?
        }
        Detail::TaskStateChange(t) => {
            let Some(ci_arn) = t.container_instance_arn.as_ref() else {
                summary.outcome = "ignored: task not on a container instance (Fargate)".into();
                return Ok(summary);
            };
            if t.last_status.to_string() != "STOPPED" {
                summary.outcome = format!("ignored: task is {}", t.last_status);
                return Ok(summary);
            }
            // The event has no EC2 instance id and the counters may be older than the event:
            // read the container instance as it is now.
            let found = match lc
                .ports
                .ecs
                .describe(t.cluster_arn.as_str(), vec![ci_arn.to_string()])
                .await
            {
                Ok(f) => f,
                // A cluster deleted since (or never in this account and region): nothing to drain.
                Err(e) if e.code.as_deref() == Some("ClusterNotFoundException") => {
                    summary.outcome = "ignored: the task's cluster does not exist".into();
                    return Ok(summary);
                }
                Err(e) => return Err(e.into()),
            };
            match found.into_iter().next() {
                // A task stopping matters only on a draining instance (launches are completed by
                // the container-instance events).
                Some(ci) if ci.status != "DRAINING" => {
                    summary.outcome = format!("ignored: container instance is {}", ci.status);
                    return Ok(summary);
                }
                Some(ci) => lc.on_container_instance(ci, region).await?,
                None => {
                    summary.outcome = "ignored: container instance no longer exists".into();
                    return Ok(summary);
                }
            }
        }
        Detail::Scheduled { .. } => lc.sweep(region).await?,
        _ => return Ok(summary),
    };
    summary.outcome = out.outcome.clone();
    summary.actions = out.actions.clone();
    for a in &out.actions {
        let outcome = if a.starts_with("dry run") {
            Outcome::DryRun
        } else if a.contains("already complete") {
            Outcome::AlreadyDone
        } else {
            Outcome::Done
        };
        let name = if a.contains("heartbeat") {
            "RecordLifecycleActionHeartbeat"
        } else if a.contains("complete") {
            "CompleteLifecycleAction"
        } else if a.contains("DRAINING") {
            "DrainContainerInstance"
        } else {
            "DeregisterTargets"
        };
        metrics.action(name, outcome);
    }
    // Tell people what was done, even when part of it failed; then fail loudly.
    let mut delivery_errors = Vec::new();
    for n in out.notifications {
        match ctx
            .notifier
            .send(n.from_event(ctx.function.name(), event), deadline)
            .await
        {
            Ok(report) => summary.actions.extend(report.actions()),
            Err(e) => delivery_errors.push(e.to_string()),
        }
    }
    if !out.errors.is_empty() {
        let msg: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
        tracing::error!(errors = ?msg, "lifecycle calls failed");
        return Err(Error {
            error_type: "AwsCallFailed",
            message: msg.join("; "),
        });
    }
    if !delivery_errors.is_empty() {
        return Err(Error {
            error_type: "DeliveryFailed",
            message: delivery_errors.join("; "),
        });
    }
    Ok(summary)
}

async fn ecs_deployment(
    ctx: &Context,
    event: &Event,
    mut summary: Summary,
    deadline: Deadline,
    metrics: &mut Metrics,
) -> Result<Summary, Error> {
    let (config, ecs) = ctx.deployment.as_ref().expect("ecs-deployment context");
    let region = event.envelope.region.as_str();
    // The service as it is now; a failure is named in the message, never blocks it.
    let service_now = |cluster: Option<String>, service: String| async move {
        let Some(cluster) = cluster else {
            return (
                None,
                Some("service details (the event's ARN does not name the cluster)".to_owned()),
            );
        };
        match ecs.service(&cluster, &service).await {
            Ok(Some(s)) => (Some(s), None),
            Ok(None) => (None, Some("service details (service not found)".to_owned())),
            Err(e) => {
                tracing::warn!(error = %e, "could not describe the service");
                (None, Some(format!("service details ({e})")))
            }
        }
    };
    let mut remember = None;
    let n = match &event.detail {
        Detail::DeploymentStateChange(d) => match deployment::classify(d) {
            DeploymentVerdict::Failed => {
                let f = match &d.service.cluster {
                    Some(c) => {
                        deployment::gather_failed(
                            ecs,
                            c,
                            &d.service.service,
                            &d.detail.deployment_id,
                        )
                        .await
                    }
                    None => deployment::FailedDeployment {
                        missing: vec![
                            "everything (the event's ARN does not name the cluster)".into(),
                        ],
                        ..Default::default()
                    },
                };
                if !f.missing.is_empty() {
                    metrics.action("Enrich", Outcome::Failed);
                }
                deployment::render_failed(d, &f, region)
            }
            DeploymentVerdict::RollbackStarted { to } => {
                let (svc, _) =
                    service_now(d.service.cluster.clone(), d.service.service.clone()).await;
                let to = to.unwrap_or_else(|| d.detail.deployment_id.clone());
                remember = Some(format!("rollback|{}|{to}", d.service.arn));
                deployment::render_rollback_started(d, svc.as_ref(), region)
            }
            DeploymentVerdict::Completed => {
                let (svc, _) =
                    service_now(d.service.cluster.clone(), d.service.service.clone()).await;
                let rollback = ctx
                    .notifier
                    .remembered(&format!(
                        "rollback|{}|{}",
                        d.service.arn, d.detail.deployment_id
                    ))
                    .await
                    || svc.as_ref().is_some_and(|s| {
                        deployment::service_rolled_back_to(s, &d.detail.deployment_id)
                    });
                if !rollback && !config.report_success {
                    summary.outcome =
                        "ignored: successful deployments are not reported (REPORT_SUCCESS)".into();
                    return Ok(summary);
                }
                deployment::render_completed(d, rollback, svc.as_ref(), region)
            }
            DeploymentVerdict::Ignore(why) => {
                summary.outcome = format!("ignored: {why}");
                return Ok(summary);
            }
        },
        Detail::ServiceAction(a) => {
            if a.detail.event_type == crate::events::ecs::EcsEventType::Info {
                summary.outcome = format!("ignored: {} is informational", a.detail.event_name);
                return Ok(summary);
            }
            let (svc, missing) =
                service_now(a.service.cluster.clone(), a.service.service.clone()).await;
            match deployment::render_service_action(
                a,
                svc.as_ref(),
                missing,
                std::time::Duration::from_secs(config.service_alert_window_secs),
                region,
            ) {
                Some(n) => n,
                None => {
                    summary.outcome = "ignored: not a warning".into();
                    return Ok(summary);
                }
            }
        }
        Detail::TaskStateChange(t) => match deployment::render_task(t, config, region) {
            Some(n) => n,
            None => {
                summary.outcome = "ignored: not a reported task stop".into();
                return Ok(summary);
            }
        },
        _ => return Ok(summary),
    };
    let kind = n.kind;
    let report = match ctx
        .notifier
        .send(n.from_event(ctx.function.name(), event), deadline)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            metrics.action("Notify", Outcome::Failed);
            return Err(e.into());
        }
    };
    metrics.action("Notify", Outcome::Done);
    if let Some(fact) = remember {
        ctx.notifier
            .remember(&fact, std::time::Duration::from_secs(2 * 86_400))
            .await;
    }
    summary.outcome = if report.route.dropped {
        format!("dropped by rule {}", report.route.rules.join(", "))
    } else if report.delivered.is_empty() && !report.already_delivered.is_empty() {
        format!("{}: already delivered", kind.as_str())
    } else {
        format!("notified: {}", kind.as_str())
    };
    summary.actions = report.actions().collect();
    Ok(summary)
}

/// Run a function's handler under the Lambda runtime. Used by every `main.rs`.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    crate::observe::init_logging();
    let ctx = Context::from_env(function).await?;
    let ctx = &ctx;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let deadline = Deadline::from_epoch_ms(event.context.deadline);
            handle(ctx, &event.payload, deadline).await
        },
    ))
    .await
}
