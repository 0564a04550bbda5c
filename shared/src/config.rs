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
        Ok(Self {
            dry_run: parse_bool("DRY_RUN", lookup("DRY_RUN"), false)?,
            metrics_namespace: lookup("METRICS_NAMESPACE")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "fleetguard".to_owned()),
        })
    }
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
