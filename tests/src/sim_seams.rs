//! The other two functions in the fleet's world, on the same table and destinations as the
//! three that drain:
//! - `ecs-deployment` gets every task state change the fleet's drains cause (EventBridge gives
//!   one event to each rule that matches it), with `REPORT_TASK_FAILURES=true`;
//! - `alarm-fanout` gets a CloudWatch alarm that follows the fleet (`fleet-draining`: ALARM
//!   while any container instance is DRAINING, OK when none is), through the same EventBridge
//!   faults as every other event.
//!
//! Invariants:
//! - a task stopped by a drain is never reported as a failure;
//! - every alarm transition an invocation handled was delivered: nothing the fleet functions
//!   keep in the shared table (claims, marks, stashes) suppresses an alarm's message.

use super::{Sim, T0};
use fleetguard::notify::NotificationKind;
use serde_json::{Value, json};

/// The payload prefix of a delivery to `ecs-deployment` (a second rule on the same event).
pub(super) const DEPLOY: &str = "ecs-deployment:";
pub(super) const ALARM: &str = "fleet-draining";

/// One transition of the fleet's alarm.
#[derive(Debug, Clone)]
pub(super) struct Transition {
    pub state: &'static str,
    pub at: i64,
    /// An invocation handled its event without error.
    pub handled: bool,
}

/// The payload and whether it is `ecs-deployment`'s copy.
pub(super) fn target(payload: &str) -> (bool, &str) {
    match payload.strip_prefix(DEPLOY) {
        Some(rest) => (true, rest),
        None => (false, payload),
    }
}

fn cloudwatch_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Sim {
    /// A task state change, to `asg-lifecycle`'s rule and to `ecs-deployment`'s.
    pub(super) fn emit_task_event(&mut self, e: Value) {
        self.stats.task_events += 1;
        let copy = format!("{DEPLOY}{e}");
        self.emit(e);
        self.emit_text(copy);
    }

    /// The alarm follows the fleet: a transition when any container instance became DRAINING
    /// or none is any more. Called as the simulator observes.
    pub(super) fn alarm_follow(&mut self) {
        let draining = self
            .aws
            .world()
            .container_instances
            .iter()
            .any(|c| c.status == "DRAINING");
        let state = if draining { "ALARM" } else { "OK" };
        let (prev, since) = self.alarm.last().map_or(("OK", T0), |t| (t.state, t.at));
        if state == prev || self.now <= since {
            return;
        }
        self.alarm.push(Transition {
            state,
            at: self.now,
            handled: false,
        });
        let mut base = fleetguard::testing::sample("alarms/metric.json");
        base["id"] = json!(format!("alarm-{}", self.alarm.len()));
        base["time"] = json!(rfc3339(self.now));
        base["region"] = json!("us-east-1");
        base["account"] = json!("123456789012");
        base["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM}"
        )]);
        let d = &mut base["detail"];
        d["alarmName"] = json!(ALARM);
        d["previousState"]["value"] = json!(prev);
        d["previousState"]["timestamp"] = json!(cloudwatch_time(since));
        d["state"]["value"] = json!(state);
        d["state"]["timestamp"] = json!(cloudwatch_time(self.now));
        self.emit(base);
    }

    /// An invocation returned without error: an alarm transition it carried was handled.
    pub(super) fn alarm_handled(&mut self, event: &Value) {
        if event["detail-type"] != "CloudWatch Alarm State Change" {
            return;
        }
        let at = event["detail"]["state"]["timestamp"].as_str();
        for t in self
            .alarm
            .iter_mut()
            .filter(|t| Some(cloudwatch_time(t.at).as_str()) == at)
        {
            t.handled = true;
        }
    }

    /// At the end: what the two functions told, against what happened.
    pub(super) fn check_seams(&mut self) {
        let sent = self.asg.lifecycle.notifier.sent();
        for n in sent.iter().filter(|n| {
            matches!(
                n.kind,
                NotificationKind::TaskFailed | NotificationKind::FargateSpotInterruption
            )
        }) {
            self.violations.push(format!(
                "ecs-deployment reported a task a drain stopped: {:?} {}",
                n.kind, n.title
            ));
        }
        for t in self.alarm.iter().filter(|t| t.handled) {
            let suffix = format!("|{}|{}", t.state, rfc3339(t.at));
            if !sent
                .iter()
                .any(|n| n.kind == NotificationKind::Alarm && n.dedupe_key.ends_with(&suffix))
            {
                self.violations.push(format!(
                    "t+{}: the alarm's {} was handled, but its message was never delivered",
                    t.at - T0,
                    t.state
                ));
            }
        }
        self.stats.alarm_transitions += self.alarm.len();
    }
}
