//! `alarm-fanout`: an alarm (EventBridge, SNS-wrapped or a direct alarm action) → decide → render
//! → the notification pipeline.

use crate::config::AlarmConfig;
use crate::decide::{AlarmDecision, decide};
use crate::render::render;
use fleetguard::config::CommonConfig;
use fleetguard::notify::Deadline;
use fleetguard::observe::{Action, Metrics, Outcome};
use fleetguard::ports::Notify;
use fleetguard::serve::{Error, Function, Summary};
use fleetguard::{Detail, Event, EventKind};

#[derive(Debug)]
pub struct Handler<N> {
    pub common: CommonConfig,
    pub alarms: AlarmConfig,
    pub notifier: N,
}

impl<N: Notify> Function for Handler<N> {
    const NAME: &'static str = "alarm-fanout";

    fn accepts(kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::AlarmStateChange
                | EventKind::AlarmContributorStateChange
                | EventKind::AlarmConfigurationChange
        )
    }

    fn metrics_namespace(&self) -> &str {
        &self.common.metrics_namespace
    }

    async fn handle(
        &self,
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
        if let AlarmDecision::Skip(why) = decide(alarm, &self.alarms) {
            tracing::info!(reason = %why, "alarm not notified");
            metrics.action(Action::Notify, Outcome::Skipped);
            summary.outcome = format!("skipped: {why}");
            return Ok(summary);
        }
        let n = render(alarm).from_event(Self::NAME, event);
        match self.notifier.send(n, deadline).await {
            Ok(report) => {
                metrics.action(Action::Notify, Outcome::Done);
                metrics.latency(Action::Notify, event);
                summary.outcome = if report.route.dropped {
                    format!("dropped by rule {}", report.route.rules.join(", "))
                } else {
                    "notified".to_owned()
                };
                summary.actions = report.actions().collect();
                Ok(summary)
            }
            Err(e) => {
                metrics.action(Action::Notify, Outcome::Failed);
                Err(e.into())
            }
        }
    }
}
