//! Configuration from the environment, read once at init. A bad value fails the init with a
//! message naming the variable, so a misconfiguration shows at deploy time, not at 3 a.m.

use std::env;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration error: {}: {}",
            self.variable, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Settings every function shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// `DRY_RUN`: read, log and notify, mutate nothing.
    pub dry_run: bool,
    /// `METRICS_NAMESPACE`: CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
}

impl CommonConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| env::var(k).ok())
    }

    /// Testable form: `lookup` stands in for the environment.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Read where it is used (`tls::roots`), checked here so that a bad value fails init.
        crate::tls::RootsSource::parse(lookup("TLS_ROOTS").as_deref())?;
        Ok(Self {
            dry_run: parse_bool("DRY_RUN", lookup("DRY_RUN"), false)?,
            metrics_namespace: metrics_namespace(lookup("METRICS_NAMESPACE"))?,
        })
    }
}

/// An optional setting checked against AWS's rule for it: unset or blank is `None`; a value
/// `allows` refuses fails init with `expected`, naming the variable.
pub fn parse_checked(
    variable: &'static str,
    value: Option<String>,
    allows: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<Option<String>, ConfigError> {
    match value.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) if allows(&v) => Ok(Some(v)),
        Some(v) => Err(ConfigError {
            variable,
            message: format!(
                "expected {expected}, got {:?} ({} characters)",
                crate::text::shown(&v, 40),
                v.chars().count()
            ),
        }),
    }
}

/// `METRICS_NAMESPACE`: what CloudWatch takes (`PutMetricData`'s rule): 1 to 255 printable
/// ASCII characters, not starting with `:` nor `AWS/` (AWS's own). Unset: `fleetguard`.
fn metrics_namespace(value: Option<String>) -> Result<String, ConfigError> {
    let ns = parse_checked(
        "METRICS_NAMESPACE",
        value,
        |ns| {
            ns.len() <= 255
                && ns.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                && !ns.starts_with(':')
                && !ns.starts_with("AWS/")
        },
        "1 to 255 printable ASCII characters, not starting with ':' or 'AWS/'",
    )?;
    Ok(ns.unwrap_or_else(|| "fleetguard".to_owned()))
}

/// An ARN of `service` (`arn:<partition>:<service>:<region>:<account>:<resource>`), or unset.
pub fn parse_arn(
    variable: &'static str,
    service: &str,
    value: Option<String>,
) -> Result<Option<String>, ConfigError> {
    parse_checked(
        variable,
        value,
        |arn| {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == service
                && !parts[3].is_empty()
                && parts[4].len() == 12
                && parts[4].bytes().all(|b| b.is_ascii_digit())
                && !parts[5].is_empty()
        },
        &format!("an ARN arn:aws:{service}:<region>:<account>:<name>"),
    )
}

/// A lookup over `NAME=value` pairs, in place of the environment (tests, the simulator).
pub fn lookup_in<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// A comma-separated list; blanks dropped. Unset is empty.
pub fn parse_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The kinds of AWS names a list may hold, each with AWS's own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// ECS cluster: 1 to 255 letters, digits, `-`, `_`; or a cluster ARN. `none` is allowed.
    Cluster,
    /// Auto Scaling group: 1 to 255 characters, no control character.
    Group,
    /// Lifecycle hook: 1 to 255 of letters, digits, `-`, `_`, `/`. `none` is allowed.
    Hook,
}

impl NameRule {
    fn allows(self, name: &str) -> bool {
        let len = (1..=255).contains(&name.chars().count());
        match self {
            Self::Cluster => {
                (name.starts_with("arn:") && name.contains(":ecs:") && name.contains(":cluster/"))
                    || (len
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            }
            Self::Group => len && !name.chars().any(char::is_control),
            Self::Hook => {
                len && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c))
            }
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Cluster => "ECS cluster names (1-255 of A-Z a-z 0-9 - _) or cluster ARNs",
            Self::Group => "Auto Scaling group names (1-255 characters)",
            Self::Hook => "lifecycle hook names (1-255 of A-Z a-z 0-9 - _ /)",
        }
    }
}

/// A comma-separated list of AWS names, each checked against `rule`; unset is empty.
pub fn parse_names(
    variable: &'static str,
    rule: NameRule,
    value: Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let names = parse_list(value);
    match names.iter().find(|n| !rule.allows(n)) {
        None => Ok(names),
        Some(bad) => Err(ConfigError {
            variable,
            message: format!(
                "expected {}, comma-separated; got {:?}",
                rule.what(),
                crate::text::shown(bad, 40)
            ),
        }),
    }
}

/// A Secrets Manager secret, by ARN or by name (1 to 512 of letters, digits and `/_+=.@-`).
pub fn parse_secret_id(
    variable: &'static str,
    value: Option<String>,
) -> Result<Option<String>, ConfigError> {
    parse_checked(
        variable,
        value,
        |id| {
            if id.starts_with("arn:") {
                id.contains(":secretsmanager:") && id.contains(":secret:")
            } else {
                id.len() <= 512
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
            }
        },
        "a Secrets Manager secret ARN or name (letters, digits, /_+=.@-)",
    )
}

/// `TARGET_GROUP_ARNS`: a list of target group ARNs.
pub fn parse_target_group_arns(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let arns = parse_list(value);
    if let Some(bad) = arns
        .iter()
        .find(|a| !a.starts_with("arn:") || !a.contains(":targetgroup/"))
    {
        return Err(ConfigError {
            variable: "TARGET_GROUP_ARNS",
            message: format!("not a target group ARN: {bad:?}"),
        });
    }
    Ok(arns)
}

/// `true`/`false`, `1`/`0`, `yes`/`no` (any case); unset or empty means `default`.
pub fn parse_bool(
    variable: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(ConfigError {
            variable,
            message: format!(
                "expected true or false, got {:?}",
                crate::text::excerpt(other, 40)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = CommonConfig::from_lookup(&|_| None).unwrap();
        assert!(!c.dry_run);
        assert_eq!(c.metrics_namespace, "fleetguard");
        let c =
            CommonConfig::from_lookup(&|k| (k == "DRY_RUN").then(|| "TRUE".to_owned())).unwrap();
        assert!(c.dry_run);
        let e = CommonConfig::from_lookup(&|k| (k == "DRY_RUN").then(|| "maybe".to_owned()))
            .unwrap_err();
        assert_eq!(e.variable, "DRY_RUN");
        assert!(e.to_string().contains("DRY_RUN"));
    }
}
