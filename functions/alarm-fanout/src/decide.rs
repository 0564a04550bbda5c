//! Whether an alarm is notified. Pure.

use crate::config::{AlarmConfig, QuietAlarms};
use fleetguard::events::AlarmStateChange;

/// Notify, or skip and say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmDecision {
    Notify,
    Skip(String),
}

pub fn decide(alarm: &AlarmStateChange, config: &AlarmConfig) -> AlarmDecision {
    if let Some(m) = &alarm.mute
        && config.muted == QuietAlarms::Skip
    {
        return AlarmDecision::Skip(format!(
            "muted by {}",
            m.muted_by_arn.as_deref().unwrap_or("an alarm mute rule")
        ));
    }
    if let Some(by) = &alarm.state.actions_suppressed_by
        && config.suppressed == QuietAlarms::Skip
    {
        return AlarmDecision::Skip(format!("actions suppressed by {by}"));
    }
    AlarmDecision::Notify
}
