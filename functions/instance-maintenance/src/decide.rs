//! What a scheduled change or a stopping instance asks for, and what to do about it. Pure.

use crate::config::{MaintenanceAction, MaintenanceConfig};
use fleetguard::events::health::{HealthStatus, MaintenanceStep};
use fleetguard::events::{HealthEvent, MaintenanceKind};
use fleetguard::ids::InstanceId;
use fleetguard::out_of_service::Findings;
use fleetguard::ports::{DrainMark, DrainReason, GroupInstance};
use sha2::{Digest, Sha256};

/// A schedule closer than this is not made: the instance is taken out of service at once.
pub const MIN_SCHEDULE_AHEAD_SECS: i64 = 120;
/// A window without an end is taken as two hours (EC2's reboot windows are about that).
pub const DEFAULT_WINDOW_SECS: i64 = 7200;
/// A due step that failed is tried again this much later (by its schedule, put again), while
/// the window has not started: Scheduler's invocation is asynchronous, so Lambda's two retries
/// are all it would get.
pub const DUE_RETRY_SECS: i64 = 300;
/// A rebooted instance is put back this long after its window ends.
pub const RETURN_DELAY_SECS: i64 = 300;

/// What to do about a Health event, for one of its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthPlan {
    /// Not acted on, not told.
    Ignore(String),
    /// Tell people, change nothing (system maintenance, `MAINTENANCE_ACTION=notify`).
    NotifyOnly,
    /// Out of service at `at` (epoch seconds), through a one-time schedule.
    Schedule { at: i64 },
    /// The window is closer than the lead time: out of service now.
    Now,
    /// The event closed (the window is over, or cancelled): its schedule goes, and what was
    /// taken out for a reboot is put back.
    Closed,
}

/// The plan for a Health event's instance. `now` and the result in epoch seconds.
pub fn plan_health(h: &HealthEvent, now: i64, config: &MaintenanceConfig) -> HealthPlan {
    if !h.is_ec2_scheduled_change() {
        return HealthPlan::Ignore(format!(
            "not an EC2 scheduled change ({} {})",
            h.service, h.category
        ));
    }
    if h.status == HealthStatus::Closed {
        return HealthPlan::Closed;
    }
    if !h.kind().takes_instance_away() || config.action == MaintenanceAction::Notify {
        return HealthPlan::NotifyOnly;
    }
    let Some(start) = h.start else {
        return HealthPlan::NotifyOnly; // the parser requires it; never here
    };
    // An update delivered after its window (EventBridge retries for a day): the maintenance
    // is over; taking the instance out now would only drain it again (found by the simulator:
    // a duplicate delivered after the window re-drained an instance already put back).
    let end = window_end(start.timestamp(), h.end.map(|t| t.timestamp()));
    if end <= now {
        return HealthPlan::Ignore(format!("its window ended {} s ago", now - end));
    }
    let at = start.timestamp() - config.lead_secs;
    if at - now < MIN_SCHEDULE_AHEAD_SECS {
        HealthPlan::Now
    } else {
        HealthPlan::Schedule { at }
    }
}

/// The label a closed event's version is recorded with.
pub const CLOSED: &str = "closed";
/// How long an event's latest applied update is kept (Health keeps events for 90 days).
pub const HEALTH_ORDER_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// The name a failed due step's retry schedule takes: the other of the pair (the schedule that
/// just fired is being deleted by Scheduler after its invocation, and a write to its name could
/// race that deletion).
pub fn retry_schedule_name(out_name: &str, firing: &str) -> String {
    let again = format!("{out_name}-r");
    if firing == again {
        out_name.to_owned()
    } else {
        again
    }
}

/// The ledger key under which an event's latest applied update is kept.
pub fn health_order_key(event_arn: &str) -> String {
    format!("health|{event_arn}")
}

/// Why a Health update is not acted on, against the latest update applied for its event
/// (`seen`, labelled [`CLOSED`] when that was the close): after the close only a duplicate close
/// is (its steps are idempotent); an update older than the one applied never is. Pure.
pub fn stale_health(version: i64, closing: bool, seen: i64, seen_label: &str) -> Option<String> {
    if seen_label == CLOSED && !closing {
        return Some("stale: AWS Health closed this event already".into());
    }
    if version < seen {
        return Some(format!(
            "stale: an update older than the one applied ({} s older)",
            seen - version
        ));
    }
    None
}

/// In no group, no searched cluster and no target group: nothing fleetguard manages runs there.
pub fn nothing_to_take_out(f: &Findings) -> bool {
    f.group.is_none() && f.container_instance.is_none() && f.registrations.is_empty()
}

/// The event's plan for one instance: people are told about an instance with nothing to take
/// out of service, and nothing is scheduled for it.
pub fn plan_for_instance(plan: &HealthPlan, f: &Findings) -> HealthPlan {
    match plan {
        HealthPlan::Schedule { .. } | HealthPlan::Now if nothing_to_take_out(f) => {
            HealthPlan::NotifyOnly
        }
        other => other.clone(),
    }
}

/// How an instance is taken out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// DRAINING and deregistered, with the mark that lets the drain be undone when the
    /// instance comes back.
    Drain { mark: Option<DrainMark> },
    /// Drained, then terminated in its group with the desired capacity kept.
    Replace,
}

/// The end of the window: its `endTime`, or [`DEFAULT_WINDOW_SECS`] after its start.
pub fn window_end(start: i64, end: Option<i64>) -> i64 {
    end.filter(|e| *e > start)
        .unwrap_or(start + DEFAULT_WINDOW_SECS)
}

/// How to take the instance out, before a window of `kind`. The drain is marked as
/// maintenance with the window's end, a reboot's as a stop's or a retirement's: nothing undoes
/// it before the window is over (a stop's mark "now" let `asg-lifecycle` undo it five minutes
/// later, with the stop still to come). See `fleetguard::reasons`.
pub fn removal(
    kind: MaintenanceKind,
    action: MaintenanceAction,
    group: Option<&GroupInstance>,
    window_end: i64,
) -> Removal {
    if kind.comes_back() {
        return Removal::Drain {
            mark: Some(maintenance_mark(window_end)),
        };
    }
    let in_service = group.is_some_and(|g| {
        g.lifecycle_state == "InService" || g.lifecycle_state.starts_with("Pending")
    });
    if action == MaintenanceAction::Replace && in_service {
        return Removal::Replace;
    }
    Removal::Drain {
        mark: Some(maintenance_mark(window_end)),
    }
}

/// The mark of a drain for scheduled maintenance: held until the window's end.
pub fn maintenance_mark(window_end: i64) -> DrainMark {
    DrainMark {
        reason: DrainReason::Maintenance,
        at: window_end,
    }
}

/// The schedule's name, from the event, the instance and the step: a duplicate or updated
/// Health event names the same schedule. Within Scheduler's 64 characters.
pub fn schedule_name(event_arn: &str, instance: &InstanceId, step: MaintenanceStep) -> String {
    let digest = Sha256::digest(event_arn.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let step = match step {
        MaintenanceStep::OutOfService => "out",
        MaintenanceStep::Return => "back",
    };
    format!("fleetguard-{instance}-{step}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetguard::events::health::{HealthCategory, parse_health_time};

    fn config(action: MaintenanceAction) -> MaintenanceConfig {
        MaintenanceConfig {
            scope: Default::default(),
            action,
            lead_secs: 1800,
            scheduler_role_arn: None,
            schedule_target_arn: None,
            schedule_group: "default".into(),
            failed_events_queue_arn: None,
            hooks: Vec::new(),
        }
    }

    fn event(code: &str, start: &str, status: HealthStatus) -> HealthEvent {
        HealthEvent {
            event_arn: "arn:aws:health:eu-west-1::event/EC2/X/Y".into(),
            service: "EC2".into(),
            event_type_code: code.into(),
            category: HealthCategory::ScheduledChange,
            status,
            start: parse_health_time(start),
            end: None,
            last_updated: None,
            instances: vec![InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap()],
            event_region: None,
            description: None,
        }
    }

    const START: &str = "Sat, 05 Jun 2027 15:00:00 GMT";

    #[test]
    fn health_updates_apply_in_order_and_never_after_the_close() {
        // (version, closing, latest applied, its label): stale?
        let table = [
            (10, false, 5, "open", false),
            (10, false, 10, "open", false), // a duplicate or a retry: idempotent steps
            (4, false, 5, "open", true),
            (4, true, 5, "open", true),
            (20, false, 10, CLOSED, true), // nothing acts after the close (issue 23, 7)
            (5, false, 10, CLOSED, true),
            (10, true, 10, CLOSED, false), // the close again
            (12, true, 10, "open", false),
        ];
        for (v, closing, seen, label, stale) in table {
            assert_eq!(
                stale_health(v, closing, seen, label).is_some(),
                stale,
                "{v} {closing} after {seen} {label}"
            );
        }
    }

    #[test]
    fn lead_time_decides_between_a_schedule_and_now() {
        let start = parse_health_time(START).unwrap().timestamp();
        let e = event(
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            START,
            HealthStatus::Upcoming,
        );
        let c = config(MaintenanceAction::Replace);
        assert_eq!(
            plan_health(&e, start - 3 * 86_400, &c),
            HealthPlan::Schedule { at: start - 1800 }
        );
        assert_eq!(plan_health(&e, start - 600, &c), HealthPlan::Now);
        // Just outside the lead time, but too close to schedule reliably.
        assert_eq!(plan_health(&e, start - 1800 - 60, &c), HealthPlan::Now);
        // Delivered after its window (two hours by default): nothing is taken out.
        assert!(matches!(
            plan_health(&e, start + DEFAULT_WINDOW_SECS, &c),
            HealthPlan::Ignore(why) if why.contains("window ended")
        ));
        assert_eq!(
            plan_health(&e, start + DEFAULT_WINDOW_SECS - 1, &c),
            HealthPlan::Now
        );
        assert_eq!(
            plan_health(&e, start - 600, &config(MaintenanceAction::Notify)),
            HealthPlan::NotifyOnly
        );
        let network = event(
            "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED",
            START,
            HealthStatus::Upcoming,
        );
        assert_eq!(
            plan_health(&network, start - 600, &c),
            HealthPlan::NotifyOnly
        );
        let closed = event(
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            START,
            HealthStatus::Closed,
        );
        assert_eq!(plan_health(&closed, start - 600, &c), HealthPlan::Closed);
        let mut rds = e.clone();
        rds.service = "RDS".into();
        assert!(matches!(plan_health(&rds, 0, &c), HealthPlan::Ignore(_)));
    }

    #[test]
    fn reboots_are_drained_and_marked_to_come_back_others_replaced_in_groups() {
        let gi = GroupInstance {
            instance_id: "i-0a1b2c3d4e5f60718".into(),
            auto_scaling_group_name: "web".into(),
            availability_zone: None,
            instance_type: None,
            lifecycle_state: "InService".into(),
        };
        let r = removal(
            MaintenanceKind::Reboot,
            MaintenanceAction::Replace,
            Some(&gi),
            5000,
        );
        assert_eq!(
            r,
            Removal::Drain {
                mark: Some(DrainMark {
                    reason: DrainReason::Maintenance,
                    at: 5000
                })
            }
        );
        let r = removal(
            MaintenanceKind::Retirement,
            MaintenanceAction::Replace,
            Some(&gi),
            5000,
        );
        assert_eq!(r, Removal::Replace);
        let r = removal(
            MaintenanceKind::Stop,
            MaintenanceAction::Replace,
            None,
            5000,
        );
        // A stop's drain is held to the window's end, as a reboot's: marked "stopped, now", it
        // was undone five minutes later with the stop still to come (issue 23, 1).
        assert_eq!(
            r,
            Removal::Drain {
                mark: Some(maintenance_mark(5000))
            }
        );
        let mut leaving = gi.clone();
        leaving.lifecycle_state = "Terminating:Wait".into();
        let r = removal(
            MaintenanceKind::Retirement,
            MaintenanceAction::Replace,
            Some(&leaving),
            5000,
        );
        assert!(matches!(r, Removal::Drain { .. }));
        let r = removal(
            MaintenanceKind::Retirement,
            MaintenanceAction::Drain,
            Some(&gi),
            5000,
        );
        assert!(matches!(r, Removal::Drain { .. }));
    }

    #[test]
    fn an_instance_with_nothing_to_take_out_is_only_told_about() {
        let empty = Findings::default();
        assert!(nothing_to_take_out(&empty));
        assert_eq!(
            plan_for_instance(&HealthPlan::Schedule { at: 5 }, &empty),
            HealthPlan::NotifyOnly
        );
        assert_eq!(
            plan_for_instance(&HealthPlan::Now, &empty),
            HealthPlan::NotifyOnly
        );
        assert_eq!(
            plan_for_instance(&HealthPlan::Closed, &empty),
            HealthPlan::Closed
        );
        let grouped = Findings {
            group: Some(GroupInstance {
                instance_id: "i-0a1b2c3d4e5f60718".into(),
                auto_scaling_group_name: "web".into(),
                availability_zone: None,
                instance_type: None,
                lifecycle_state: "InService".into(),
            }),
            ..Findings::default()
        };
        assert_eq!(
            plan_for_instance(&HealthPlan::Schedule { at: 5 }, &grouped),
            HealthPlan::Schedule { at: 5 }
        );
    }

    #[test]
    fn schedule_names_are_stable_and_short() {
        let i = InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap();
        let a = schedule_name(
            "arn:aws:health:eu-west-1::event/EC2/X/1",
            &i,
            MaintenanceStep::OutOfService,
        );
        assert_eq!(
            a,
            schedule_name(
                "arn:aws:health:eu-west-1::event/EC2/X/1",
                &i,
                MaintenanceStep::OutOfService
            )
        );
        assert_ne!(
            a,
            schedule_name(
                "arn:aws:health:eu-west-1::event/EC2/X/2",
                &i,
                MaintenanceStep::OutOfService
            )
        );
        assert_ne!(
            a,
            schedule_name(
                "arn:aws:health:eu-west-1::event/EC2/X/1",
                &i,
                MaintenanceStep::Return
            )
        );
        assert!(a.len() <= 64, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(window_end(100, None), 100 + DEFAULT_WINDOW_SECS);
        assert_eq!(window_end(100, Some(50)), 100 + DEFAULT_WINDOW_SECS);
        assert_eq!(window_end(100, Some(900)), 900);
    }
}
