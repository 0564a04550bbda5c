//! What a notification says of its account: the account's name (`ACCOUNT_NAMES`), keys that
//! include a member account (a hub serves many; an alarm named `HighCPU` in two accounts is
//! two incidents), and console links that open the account (`CONSOLE_SHORTCUT_URL`).

use super::{Notification, url_encode};
use crate::accounts::AccountNames;
use crate::config::{ConfigError, parse_checked};
use std::sync::Arc;

/// IAM Identity Center's shortcut link: the access portal signs the reader in to the account,
/// in the role, then opens the console page (`destination`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleShortcut {
    /// `CONSOLE_SHORTCUT_URL`: the AWS access portal URL (`https://d-…awsapps.com/start`).
    pub start_url: String,
    /// `CONSOLE_ROLE_NAME`: the permission set to open the console in.
    pub role_name: String,
}

impl ConsoleShortcut {
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let start = parse_checked(
            "CONSOLE_SHORTCUT_URL",
            lookup("CONSOLE_SHORTCUT_URL"),
            |u| {
                u.starts_with("https://")
                    && u.len() <= 512
                    && !u.contains(['#', '?', ' ', '"', '<', '>'])
            },
            "the AWS access portal URL, https://… with no query or fragment",
        )?;
        let role = parse_checked(
            "CONSOLE_ROLE_NAME",
            lookup("CONSOLE_ROLE_NAME"),
            |r| {
                (1..=64).contains(&r.len())
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            },
            "a permission set name: 1 to 64 of [A-Za-z0-9+=,.@_-]",
        )?;
        match (start, role) {
            (None, None) => Ok(None),
            (Some(start_url), Some(role_name)) => Ok(Some(Self {
                start_url: start_url.trim_end_matches('/').to_owned(),
                role_name,
            })),
            (Some(_), None) => Err(ConfigError {
                variable: "CONSOLE_ROLE_NAME",
                message: "CONSOLE_SHORTCUT_URL needs the role to open the console in".into(),
            }),
            (None, Some(_)) => Err(ConfigError {
                variable: "CONSOLE_SHORTCUT_URL",
                message: "CONSOLE_ROLE_NAME needs the access portal URL".into(),
            }),
        }
    }

    /// A console `url` opened in `account` through the access portal.
    pub fn link(&self, account: &str, url: &str) -> String {
        format!(
            "{}/#/console?account_id={account}&role_name={}&destination={}",
            self.start_url,
            url_encode(&self.role_name),
            url_encode(url)
        )
    }
}

/// The account side of a notifier: shared by the hub's notifier and each member's.
#[derive(Debug, Clone, Default)]
pub struct AccountView {
    pub names: Arc<AccountNames>,
    pub shortcut: Option<Arc<ConsoleShortcut>>,
    /// The member account this notifier serves (its keys are prefixed); `None`: its own.
    pub member: Option<Arc<str>>,
}

impl AccountView {
    /// Fill in what the notification says of its account.
    pub fn apply(&self, n: &mut Notification) {
        n.source.account_name = self.names.name(&n.source.account).map(str::to_owned);
        if let Some(account) = self.member.as_deref() {
            let prefix = format!("{account}/");
            if !n.dedupe_key.starts_with(&prefix) {
                n.dedupe_key = format!("{prefix}{}", n.dedupe_key);
            }
            if let Some(i) = &mut n.incident
                && !i.key.starts_with(&prefix)
            {
                i.key = format!("{prefix}{}", i.key);
            }
        }
        if let Some(s) = &self.shortcut
            && crate::accounts::is_account_id(&n.source.account)
        {
            for l in &mut n.links {
                if is_console(&l.url) {
                    l.url = s.link(&n.source.account, &l.url);
                }
            }
        }
    }
}

/// A link into the AWS console (any partition), not one already through the portal.
fn is_console(url: &str) -> bool {
    let host = url
        .strip_prefix("https://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    [
        "console.aws.amazon.com",
        "console.amazonaws.cn",
        "console.amazonaws-us-gov.com",
    ]
    .iter()
    .any(|c| host == *c || host.ends_with(&format!(".{c}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in;
    use crate::notify::{NotificationKind, Phase, Severity};

    fn alarm(account: &str) -> Notification {
        let mut n = Notification::new(
            NotificationKind::Alarm,
            Severity::High,
            "HighCPU",
            "alarm/HighCPU/ALARM",
        )
        .incident("alarm/HighCPU", Phase::Opened)
        .link(
            "Alarm",
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/HighCPU",
        )
        .link("Runbook", "https://wiki.example/runbook");
        n.source.account = account.into();
        n
    }

    #[test]
    fn a_members_keys_carry_its_account_and_its_name_is_shown() {
        let view = AccountView {
            names: Arc::new(AccountNames::new([(
                "111111111111".to_owned(),
                "payments-prod".to_owned(),
            )])),
            shortcut: None,
            member: Some("111111111111".into()),
        };
        let mut n = alarm("111111111111");
        view.apply(&mut n);
        assert_eq!(n.dedupe_key, "111111111111/alarm/HighCPU/ALARM");
        assert_eq!(n.incident_key(), "111111111111/alarm/HighCPU");
        assert_eq!(n.source.account_label(), "payments-prod (111111111111)");
        // Applied twice (a retry of a kept message), the keys stay.
        view.apply(&mut n);
        assert_eq!(n.incident_key(), "111111111111/alarm/HighCPU");
        // The hub's own (and a standalone deployment's) keys are as they always were.
        let own = AccountView::default();
        let mut n = alarm("999999999999");
        own.apply(&mut n);
        assert_eq!(n.incident_key(), "alarm/HighCPU");
        assert_eq!(n.source.account_label(), "999999999999");
    }

    #[test]
    fn console_links_open_the_account_through_the_access_portal() {
        let shortcut = ConsoleShortcut::from_lookup(&lookup_in(&[
            (
                "CONSOLE_SHORTCUT_URL",
                "https://d-1234567890.awsapps.com/start/",
            ),
            ("CONSOLE_ROLE_NAME", "ReadOnly"),
        ]))
        .unwrap()
        .unwrap();
        let view = AccountView {
            shortcut: Some(Arc::new(shortcut)),
            ..AccountView::default()
        };
        let mut n = alarm("222222222222");
        view.apply(&mut n);
        assert!(
            n.links[0].url.starts_with(
                "https://d-1234567890.awsapps.com/start/#/console?account_id=222222222222&role_name=ReadOnly&destination=https%3A%2F%2Feu-west-1.console.aws.amazon.com%2Fcloudwatch"
            ),
            "{}",
            n.links[0].url
        );
        assert_eq!(n.links[1].url, "https://wiki.example/runbook");
    }

    #[test]
    fn shortcut_settings_come_in_pairs_and_are_checked() {
        let none = ConsoleShortcut::from_lookup(&lookup_in(&[])).unwrap();
        assert_eq!(none, None);
        for (pairs, variable) in [
            (
                vec![("CONSOLE_SHORTCUT_URL", "https://d-1.awsapps.com/start")],
                "CONSOLE_ROLE_NAME",
            ),
            (
                vec![("CONSOLE_ROLE_NAME", "ReadOnly")],
                "CONSOLE_SHORTCUT_URL",
            ),
            (
                vec![
                    ("CONSOLE_SHORTCUT_URL", "http://d-1.awsapps.com/start"),
                    ("CONSOLE_ROLE_NAME", "ReadOnly"),
                ],
                "CONSOLE_SHORTCUT_URL",
            ),
            (
                vec![
                    ("CONSOLE_SHORTCUT_URL", "https://d-1.awsapps.com/start"),
                    ("CONSOLE_ROLE_NAME", "Read Only"),
                ],
                "CONSOLE_ROLE_NAME",
            ),
        ] {
            let e = ConsoleShortcut::from_lookup(&lookup_in(&pairs)).unwrap_err();
            assert_eq!(e.variable, variable, "{pairs:?}");
        }
    }
}
