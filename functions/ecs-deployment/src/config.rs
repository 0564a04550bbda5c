//! `ecs-deployment`'s settings: `REPORT_SUCCESS`, `SERVICE_ALERT_WINDOW_SECONDS`,
//! `REPORT_TASK_FAILURES`.

use fleetguard::config::{ConfigError, parse_bool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentConfig {
    /// `REPORT_SUCCESS`: also report deployments that completed normally.
    pub report_success: bool,
    /// `SERVICE_ALERT_WINDOW_SECONDS`: at most one alert per service and event name in this window
    /// (needs `DEDUPE_TABLE`).
    pub service_alert_window_secs: u64,
    /// `REPORT_TASK_FAILURES`: report essential-container exits outside deployments.
    pub report_task_failures: bool,
}

impl DeploymentConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let window = match lookup("SERVICE_ALERT_WINDOW_SECONDS")
            .as_deref()
            .map(str::trim)
        {
            None | Some("") => 900,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=7 * 86_400).contains(n))
                .ok_or_else(|| ConfigError {
                    variable: "SERVICE_ALERT_WINDOW_SECONDS",
                    message: format!(
                        "expected whole seconds from 1 to 604800, got {:?}",
                        fleetguard::text::shown(s, 40)
                    ),
                })?,
        };
        Ok(Self {
            report_success: parse_bool("REPORT_SUCCESS", lookup("REPORT_SUCCESS"), false)?,
            service_alert_window_secs: window,
            report_task_failures: parse_bool(
                "REPORT_TASK_FAILURES",
                lookup("REPORT_TASK_FAILURES"),
                false,
            )?,
        })
    }
}
