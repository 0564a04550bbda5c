//! What a Spot event asks for, and what to do about it. Pure.

use crate::config::{RebalanceAction, SpotConfig};
use fleetguard::events::{Event, InstanceAction};
use fleetguard::ids::InstanceId;
use fleetguard::out_of_service::Findings;
use fleetguard::ports::{DrainMark, DrainReason};

/// What a Spot event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub instance_id: InstanceId,
    /// `None` for a rebalance recommendation.
    pub action: Option<InstanceAction>,
}

/// The decision, from the event, what was found and the configuration. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not ours: acknowledged without a message.
    Ignore(String),
    /// Tell people, change nothing.
    NotifyOnly,
    /// Drain (or say what would be drained, in a dry run), then tell people.
    Drain {
        container_instance: bool,
        deregister: bool,
    },
}

pub fn decide(i: &Interruption, f: &Findings, config: &SpotConfig) -> Plan {
    if let Some(why) = f.unmanaged_because(&config.scope) {
        return Plan::Ignore(format!("{} is {why}", i.instance_id));
    }
    if f.container_instance.is_none() && f.registrations.is_empty() {
        return Plan::Ignore(format!(
            "{} is in no searched ECS cluster and no target group",
            i.instance_id
        ));
    }
    if i.action.is_none() {
        match config.rebalance {
            RebalanceAction::Ignore => {
                return Plan::Ignore(
                    "rebalance recommendations are ignored (REBALANCE_ACTION)".into(),
                );
            }
            RebalanceAction::Notify => return Plan::NotifyOnly,
            RebalanceAction::Drain => {}
        }
    }
    Plan::Drain {
        container_instance: f.container_instance.is_some(),
        deregister: !f.registrations.is_empty(),
    }
}

/// The reason a drain carries: a Spot stop or hibernation (started again when capacity
/// returns), a rebalance recommendation (no interruption may follow), a termination (final:
/// written only over a mark of ours, so that an earlier rebalance drain is never undone inside
/// the two minutes; see [`fleetguard::reasons::drain_needs`]).
pub fn drain_mark(action: Option<&InstanceAction>, now: i64) -> Option<DrainMark> {
    let reason = match action {
        None => DrainReason::Rebalance,
        Some(InstanceAction::Stop) => DrainReason::SpotStop,
        Some(InstanceAction::Hibernate) => DrainReason::SpotHibernate,
        Some(_) => DrainReason::Interruption,
    };
    Some(DrainMark { reason, at: now })
}

/// Time left before the interruption: the warning comes about two minutes ahead of it.
pub fn time_left(event: &Event, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let t = event.envelope.time.at()?;
    Some((t + chrono::Duration::seconds(120) - now).num_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetguard::ports::ContainerInstance;

    fn ci() -> ContainerInstance {
        ContainerInstance {
            cluster_arn: "arn:aws:ecs:eu-west-1:1:cluster/prod".into(),
            arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/abc".into(),
            ec2_instance_id: "i-0a1b2c3d4e5f60718".into(),
            status: "ACTIVE".into(),
            agent_connected: true,
            running_tasks_count: 2,
            pending_tasks_count: 0,
            instance_type: Some("m5.large".into()),
            availability_zone: Some("eu-west-1a".into()),
            drain_mark: None,
        }
    }

    fn interruption(action: Option<InstanceAction>) -> Interruption {
        Interruption {
            instance_id: InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap(),
            action,
        }
    }

    fn config(lookup: &[(&str, &str)]) -> SpotConfig {
        SpotConfig::from_lookup(fleetguard::config::lookup_in(lookup)).unwrap()
    }

    #[test]
    fn drains_what_was_found() {
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let p = decide(&interruption(Some(InstanceAction::Stop)), &f, &config(&[]));
        assert_eq!(
            p,
            Plan::Drain {
                container_instance: true,
                deregister: false
            }
        );
    }

    #[test]
    fn unknown_and_unmanaged_instances_are_ignored() {
        let p = decide(
            &interruption(Some(InstanceAction::Terminate)),
            &Findings::default(),
            &config(&[]),
        );
        assert!(matches!(p, Plan::Ignore(_)));
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let p = decide(
            &interruption(Some(InstanceAction::Terminate)),
            &f,
            &config(&[("MANAGED_ASG_TAG", "fleetguard")]),
        );
        assert!(matches!(p, Plan::Ignore(why) if why.contains("tagged fleetguard")));
    }

    #[test]
    fn an_instance_of_a_group_not_named_is_not_ours() {
        let in_group = |g: &str| Findings {
            container_instance: Some(ci()),
            group: Some(fleetguard::ports::GroupInstance {
                instance_id: "i-0a1b2c3d4e5f60718".into(),
                auto_scaling_group_name: g.into(),
                lifecycle_state: "InService".into(),
                ..Default::default()
            }),
            ..Findings::default()
        };
        let c = config(&[("AUTO_SCALING_GROUPS", "web, workers")]);
        let warning = interruption(Some(InstanceAction::Terminate));
        assert!(matches!(
            decide(&warning, &in_group("batch"), &c),
            Plan::Ignore(why) if why.contains("not one of AUTO_SCALING_GROUPS")
        ));
        assert!(matches!(
            decide(&warning, &in_group("workers"), &c),
            Plan::Drain { .. }
        ));
        // In no group at all (a Spot instance launched alone): still drained, as without names.
        let alone = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        assert!(matches!(decide(&warning, &alone, &c), Plan::Drain { .. }));
    }

    #[test]
    fn a_bad_managed_tag_fails_init() {
        for bad in ["=oops", " = x"] {
            let e = SpotConfig::from_lookup(|k| (k == "MANAGED_ASG_TAG").then(|| bad.to_owned()))
                .unwrap_err();
            assert_eq!(e.variable, "MANAGED_ASG_TAG", "{bad}");
        }
    }

    #[test]
    fn rebalance_follows_its_setting() {
        let f = Findings {
            container_instance: Some(ci()),
            ..Findings::default()
        };
        let i = interruption(None);
        assert_eq!(decide(&i, &f, &config(&[])), Plan::NotifyOnly);
        assert!(matches!(
            decide(&i, &f, &config(&[("REBALANCE_ACTION", "ignore")])),
            Plan::Ignore(_)
        ));
        assert!(matches!(
            decide(&i, &f, &config(&[("REBALANCE_ACTION", "drain")])),
            Plan::Drain { .. }
        ));
    }
}
