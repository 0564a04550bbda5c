//! What is ours and where to look: the scope every function that acts on instances shares
//! (`ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG`, `AUTO_SCALING_GROUPS`), and how a
//! hub applies it in a member account.

use crate::config::{ConfigError, NameRule, parse_names, parse_target_group_arns};
use std::collections::BTreeMap;

/// `MANAGED_ASG_TAG`: `key` (any value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedTag {
    pub key: String,
    pub value: Option<String>,
}

impl ManagedTag {
    /// `MANAGED_ASG_TAG` as configured: unset or blank is no tag; `key` or `key=value`, with a
    /// key (Auto Scaling tag keys are 1 to 128 characters). A bad value fails init.
    pub fn from_config(value: Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some(tag) = value.as_deref().and_then(Self::parse) else {
            return Ok(None);
        };
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(ConfigError {
                variable: "MANAGED_ASG_TAG",
                message: format!(
                    "expected key or key=value with a key of 1 to 128 characters, got {:?}",
                    crate::text::shown(value.as_deref().unwrap_or_default(), 40)
                ),
            });
        }
        Ok(Some(tag))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.split_once('=') {
            Some((k, v)) => Self {
                key: k.trim().to_owned(),
                value: Some(v.trim().to_owned()),
            },
            None => Self {
                key: s.to_owned(),
                value: None,
            },
        })
    }

    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        match (tags.get(&self.key), &self.value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        }
    }
}

/// Where to look and what is ours: from `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Names or ARNs; empty means every cluster of the account.
    pub clusters: Vec<String>,
    /// Looked in besides the target groups of the instance's Auto Scaling group (and the only ones
    /// for an instance in no group).
    pub target_group_arns: Vec<String>,
    pub managed_tag: Option<ManagedTag>,
    /// `AUTO_SCALING_GROUPS`: an instance of another group is not ours (empty: any group).
    pub groups: Vec<String>,
}

impl Scope {
    /// This scope as a hub applies it in `account`: clusters given by ARN of another account
    /// are looked for by name there, and only `account`'s target groups are looked in (another
    /// account's cannot be read with its credentials).
    pub fn in_account(&self, account: &str) -> Self {
        let arn_account = |arn: &str| arn.split(':').nth(4).map(str::to_owned);
        Self {
            clusters: self
                .clusters
                .iter()
                .map(|c| match arn_account(c) {
                    Some(a) if a != account => c.rsplit('/').next().unwrap_or(c).to_owned(),
                    _ => c.clone(),
                })
                .collect(),
            target_group_arns: self
                .target_group_arns
                .iter()
                .filter(|t| arn_account(t).as_deref() == Some(account))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// `ECS_CLUSTERS`, `TARGET_GROUP_ARNS`, `MANAGED_ASG_TAG` and `AUTO_SCALING_GROUPS`, the
    /// same for every function that acts on instances.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            clusters: parse_names("ECS_CLUSTERS", NameRule::Cluster, lookup("ECS_CLUSTERS"))?,
            target_group_arns: parse_target_group_arns(lookup("TARGET_GROUP_ARNS"))?,
            managed_tag: ManagedTag::from_config(lookup("MANAGED_ASG_TAG"))?,
            groups: parse_names(
                "AUTO_SCALING_GROUPS",
                NameRule::Group,
                lookup("AUTO_SCALING_GROUPS"),
            )?,
        })
    }

    /// Whether `MANAGED_ASG_TAG` or `AUTO_SCALING_GROUPS` narrows which groups are ours.
    pub fn narrowed(&self) -> bool {
        self.managed_tag.is_some() || !self.groups.is_empty()
    }

    /// Why the group `name` (with `tags`) is not ours, or `None` when it is: one of
    /// `AUTO_SCALING_GROUPS` (when named) and carrying `MANAGED_ASG_TAG` (when set).
    pub fn refuses_group(&self, name: &str, tags: &BTreeMap<String, String>) -> Option<String> {
        if !self.groups.is_empty() && !self.groups.iter().any(|g| g == name) {
            return Some(format!("in group {name}, not one of AUTO_SCALING_GROUPS"));
        }
        match &self.managed_tag {
            Some(tag) if !tag.matches(tags) => Some(format!(
                "not in an Auto Scaling group tagged {} ({name} is not)",
                tag.key
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_tag() {
        let tag = ManagedTag::parse("team=web").unwrap();
        assert!(tag.matches(&BTreeMap::from([("team".into(), "web".into())])));
        assert!(!tag.matches(&BTreeMap::from([("team".into(), "api".into())])));
        let any = ManagedTag::parse(" fleetguard ").unwrap();
        assert!(any.matches(&BTreeMap::from([("fleetguard".into(), String::new())])));
        assert!(ManagedTag::parse("  ").is_none());
    }

    #[test]
    fn a_scope_in_a_member_account_looks_only_at_what_that_account_can_read() {
        let hub_tg = "arn:aws:elasticloadbalancing:us-east-1:999999999999:targetgroup/web/1";
        let member_tg = "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/web/2";
        let scope = Scope {
            clusters: vec![
                "prod".into(),
                "arn:aws:ecs:us-east-1:999999999999:cluster/batch".into(),
                "arn:aws:ecs:us-east-1:111111111111:cluster/jobs".into(),
            ],
            target_group_arns: vec![hub_tg.into(), member_tg.into()],
            ..Scope::default()
        };
        let m = scope.in_account("111111111111");
        assert_eq!(m.target_group_arns, [member_tg]);
        assert_eq!(
            m.clusters,
            [
                "prod",
                "batch",
                "arn:aws:ecs:us-east-1:111111111111:cluster/jobs"
            ]
        );
        assert_eq!(scope.in_account("999999999999").target_group_arns, [hub_tg]);
    }
}
