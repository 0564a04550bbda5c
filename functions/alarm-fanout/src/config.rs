//! `alarm-fanout`'s settings: `MUTED_ALARMS`, `SUPPRESSED_ALARMS`.

use fleetguard::config::ConfigError;

/// What to do with alarms AWS itself would have kept quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietAlarms {
    Skip,
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmConfig {
    /// `MUTED_ALARMS`: alarms muted by an alarm mute rule (EventBridge events are not muted by AWS).
    pub muted: QuietAlarms,
    /// `SUPPRESSED_ALARMS`: composite alarms whose actions a suppressor alarm suppresses.
    pub suppressed: QuietAlarms,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self {
            muted: QuietAlarms::Skip,
            suppressed: QuietAlarms::Skip,
        }
    }
}

impl AlarmConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let parse = |variable: &'static str| -> Result<QuietAlarms, ConfigError> {
            match lookup(variable)
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref()
            {
                None | Some("") | Some("skip") => Ok(QuietAlarms::Skip),
                Some("notify") => Ok(QuietAlarms::Notify),
                Some(other) => Err(ConfigError {
                    variable,
                    message: format!(
                        "expected skip or notify, got {:?}",
                        fleetguard::text::shown(other, 40)
                    ),
                }),
            }
        };
        Ok(Self {
            muted: parse("MUTED_ALARMS")?,
            suppressed: parse("SUPPRESSED_ALARMS")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values() {
        assert_eq!(
            AlarmConfig::from_lookup(|_| None).unwrap(),
            AlarmConfig::default()
        );
        let c =
            AlarmConfig::from_lookup(|k| (k == "MUTED_ALARMS").then(|| "Notify".into())).unwrap();
        assert_eq!(c.muted, QuietAlarms::Notify);
        assert_eq!(
            AlarmConfig::from_lookup(|_| Some("maybe".into()))
                .unwrap_err()
                .variable,
            "MUTED_ALARMS"
        );
    }
}
