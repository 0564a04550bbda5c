//! `spot-interruption`'s settings: `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG`,
//! `AUTO_SCALING_GROUPS`, `REBALANCE_ACTION`.

use fleetguard::config::ConfigError;
use fleetguard::out_of_service::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceAction {
    Ignore,
    Notify,
    Drain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotConfig {
    /// `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG`, `AUTO_SCALING_GROUPS`.
    pub scope: Scope,
    pub rebalance: RebalanceAction,
}

impl SpotConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rebalance = match lookup("REBALANCE_ACTION")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("notify") => RebalanceAction::Notify,
            Some("ignore") => RebalanceAction::Ignore,
            Some("drain") => RebalanceAction::Drain,
            Some(other) => {
                return Err(ConfigError {
                    variable: "REBALANCE_ACTION",
                    message: format!(
                        "expected ignore, notify or drain, got {:?}",
                        fleetguard::text::shown(other, 40)
                    ),
                });
            }
        };
        Ok(Self {
            scope: Scope::from_lookup(&lookup)?,
            rebalance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(lookup: &[(&str, &str)]) -> SpotConfig {
        SpotConfig::from_lookup(fleetguard::config::lookup_in(lookup)).unwrap()
    }

    #[test]
    fn config_is_validated() {
        let e = SpotConfig::from_lookup(|k| (k == "REBALANCE_ACTION").then(|| "maybe".into()))
            .unwrap_err();
        assert_eq!(e.variable, "REBALANCE_ACTION");
        let e = SpotConfig::from_lookup(|k| (k == "TARGET_GROUP_ARNS").then(|| "tg-1".into()))
            .unwrap_err();
        assert_eq!(e.variable, "TARGET_GROUP_ARNS");
        let c = config(&[("ECS_CLUSTERS", "a, b,,"), ("MANAGED_ASG_TAG", "team=web")]);
        assert_eq!(c.scope.clusters, vec!["a", "b"]);
        let tag = c.scope.managed_tag.unwrap();
        assert!(tag.matches(&BTreeMap::from([("team".into(), "web".into())])));
        assert!(!tag.matches(&BTreeMap::from([("team".into(), "api".into())])));
    }
}
