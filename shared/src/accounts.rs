//! Accounts: which account an event is about, and whether this deployment acts there.
//!
//! Standalone (the default), a deployment acts in its own account with its own credentials.
//! As an organization's hub (`MEMBER_ACCOUNTS` or `ORGANIZATION_ID` set), it also acts in member
//! accounts, whose EventBridge rules forward their events to the hub's bus, by assuming
//! `MEMBER_ROLE_NAME` there ([`crate::hub`]). `ACCOUNT_NAMES` names accounts in messages in
//! either mode.

use crate::config::{ConfigError, parse_checked};
use std::collections::{BTreeMap, BTreeSet};

/// Which accounts a hub serves besides its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// `MEMBER_ACCOUNTS`: exactly these.
    Listed(BTreeSet<String>),
    /// `ORGANIZATION_ID`: any account of the organization. The hub's bus policy admits only the
    /// organization's accounts (`aws:PrincipalOrgID`); the function cannot ask Organizations
    /// itself without more permissions, so it trusts the bus for this.
    Organization(String),
}

/// A hub's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// `HUB_ACCOUNT_ID`: the hub's own account, acted in with the function's own credentials.
    pub account: String,
    pub members: Members,
    /// `MEMBER_ROLE_NAME` (default `fleetguard-member`): the role each member account holds
    /// for the hub's functions.
    pub role_name: String,
}

/// What a deployment does with an event of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// With its own credentials: standalone, the hub's own account, or an event that names none.
    Own,
    /// In a member account, with the role it holds for the hub.
    Member(String),
    /// Not an account this hub serves: acknowledged, nothing assumed.
    Refused(String),
}

impl Hub {
    /// `None` when standalone (neither `MEMBER_ACCOUNTS` nor `ORGANIZATION_ID` set).
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let listed = parse_checked(
            "MEMBER_ACCOUNTS",
            lookup("MEMBER_ACCOUNTS"),
            |v| v.split(',').all(|a| is_account_id(a.trim())),
            "a comma-separated list of 12-digit account ids",
        )?;
        let organization = parse_checked(
            "ORGANIZATION_ID",
            lookup("ORGANIZATION_ID"),
            is_organization_id,
            "an organization id o-[a-z0-9]{10,32}",
        )?;
        // Checked whether or not this is a hub: a bad value fails init either way.
        let account = parse_checked(
            "HUB_ACCOUNT_ID",
            lookup("HUB_ACCOUNT_ID"),
            is_account_id,
            "a 12-digit account id",
        )?;
        let role_name = parse_checked(
            "MEMBER_ROLE_NAME",
            lookup("MEMBER_ROLE_NAME"),
            is_role_name,
            "an IAM role name: 1 to 64 of [A-Za-z0-9+=,.@_-]",
        )?
        .unwrap_or_else(|| "fleetguard-member".to_owned());
        let members = match (listed, organization) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(err(
                    "MEMBER_ACCOUNTS",
                    "set MEMBER_ACCOUNTS or ORGANIZATION_ID, not both",
                ));
            }
            (Some(l), None) => Members::Listed(l.split(',').map(|a| a.trim().to_owned()).collect()),
            (None, Some(o)) => Members::Organization(o),
        };
        let account = account.ok_or_else(|| {
            err(
                "HUB_ACCOUNT_ID",
                "a hub (MEMBER_ACCOUNTS or ORGANIZATION_ID set) needs its own account id",
            )
        })?;
        Ok(Some(Self {
            account,
            members,
            role_name,
        }))
    }

    /// The role the hub assumes in `account`, in the partition of `region`.
    pub fn role_arn(&self, account: &str, region: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            partition_of(region),
            self.role_name
        )
    }
}

/// Whether to act on an event of `account`, and how. Decided before anything is assumed.
pub fn acting(hub: Option<&Hub>, account: &str) -> Acting {
    let Some(hub) = hub else {
        return Acting::Own;
    };
    if account.is_empty() || account == hub.account {
        return Acting::Own;
    }
    if !is_account_id(account) {
        return Acting::Refused(format!(
            "account {:?} is not an account id",
            crate::text::shown(account, 20)
        ));
    }
    match &hub.members {
        Members::Listed(l) if l.contains(account) => Acting::Member(account.to_owned()),
        Members::Listed(_) => Acting::Refused(format!(
            "account {account} is not a member of this hub (MEMBER_ACCOUNTS)"
        )),
        Members::Organization(_) => Acting::Member(account.to_owned()),
    }
}

/// `ACCOUNT_NAMES`: a JSON object of account id → name, for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountNames(BTreeMap<String, String>);

impl AccountNames {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let Some(raw) = lookup("ACCOUNT_NAMES").filter(|s| !s.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let map: BTreeMap<String, String> = serde_json::from_str(&raw).map_err(|e| {
            err(
                "ACCOUNT_NAMES",
                format!("expected a JSON object of account id to name: {e}"),
            )
        })?;
        if let Some(bad) = map.keys().find(|k| !is_account_id(k)) {
            return Err(err(
                "ACCOUNT_NAMES",
                format!(
                    "{:?} is not a 12-digit account id",
                    crate::text::shown(bad, 20)
                ),
            ));
        }
        if let Some((k, _)) = map
            .iter()
            .find(|(_, v)| v.trim().is_empty() || v.len() > 256)
        {
            return Err(err(
                "ACCOUNT_NAMES",
                format!("the name of {k} must be 1 to 256 characters"),
            ));
        }
        Ok(Self(map))
    }

    pub fn new(names: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(names.into_iter().collect())
    }

    pub fn name(&self, account: &str) -> Option<&str> {
        self.0.get(account).map(String::as_str)
    }

    /// `name (id)`, or the id alone.
    pub fn describe(&self, account: &str) -> String {
        match self.name(account) {
            Some(n) => format!("{n} ({account})"),
            None => account.to_owned(),
        }
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_organization_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_role_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// The partition of a Region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in;

    const A: &str = "111111111111";
    const B: &str = "222222222222";
    const HUB: &str = "999999999999";

    fn hub(pairs: &[(&str, &str)]) -> Result<Option<Hub>, ConfigError> {
        Hub::from_lookup(&lookup_in(pairs))
    }

    #[test]
    fn standalone_acts_in_whatever_account_the_event_names() {
        assert_eq!(hub(&[]).unwrap(), None);
        assert_eq!(acting(None, A), Acting::Own);
        assert_eq!(acting(None, ""), Acting::Own);
    }

    #[test]
    fn a_listed_hub_acts_in_its_members_and_refuses_the_rest_before_assuming_anything() {
        let h = hub(&[
            ("MEMBER_ACCOUNTS", &format!("{A}, {B}")),
            ("HUB_ACCOUNT_ID", HUB),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(h.role_name, "fleetguard-member");
        assert_eq!(acting(Some(&h), A), Acting::Member(A.into()));
        assert_eq!(acting(Some(&h), B), Acting::Member(B.into()));
        assert_eq!(acting(Some(&h), HUB), Acting::Own);
        assert_eq!(acting(Some(&h), ""), Acting::Own);
        let Acting::Refused(why) = acting(Some(&h), "333333333333") else {
            panic!("a stranger is refused")
        };
        assert!(
            why.contains("333333333333") && why.contains("MEMBER_ACCOUNTS"),
            "{why}"
        );
        assert!(matches!(acting(Some(&h), "12345"), Acting::Refused(_)));
        assert!(matches!(acting(Some(&h), "../../x"), Acting::Refused(_)));
        assert_eq!(
            h.role_arn(A, "eu-west-1"),
            format!("arn:aws:iam::{A}:role/fleetguard-member")
        );
        assert_eq!(
            h.role_arn(A, "cn-north-1"),
            format!("arn:aws-cn:iam::{A}:role/fleetguard-member")
        );
    }

    #[test]
    fn an_organization_hub_acts_in_any_account_its_bus_admitted() {
        let h = hub(&[
            ("ORGANIZATION_ID", "o-abcdef1234"),
            ("HUB_ACCOUNT_ID", HUB),
            ("MEMBER_ROLE_NAME", "fg-hub"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(acting(Some(&h), B), Acting::Member(B.into()));
        assert!(
            h.role_arn(B, "us-gov-west-1")
                .starts_with("arn:aws-us-gov:")
        );
        assert!(h.role_arn(B, "us-gov-west-1").ends_with(":role/fg-hub"));
    }

    #[test]
    fn bad_hub_settings_fail_init_naming_the_variable() {
        let bad: &[(&[(&str, &str)], &str)] = &[
            (&[("MEMBER_ACCOUNTS", "1111")], "MEMBER_ACCOUNTS"),
            (&[("MEMBER_ACCOUNTS", "111111111111,x")], "MEMBER_ACCOUNTS"),
            (&[("ORGANIZATION_ID", "r-abcd")], "ORGANIZATION_ID"),
            (&[("MEMBER_ACCOUNTS", A)], "HUB_ACCOUNT_ID"),
            (
                &[("MEMBER_ACCOUNTS", A), ("ORGANIZATION_ID", "o-abcdef1234")],
                "MEMBER_ACCOUNTS",
            ),
            (
                &[("MEMBER_ACCOUNTS", A), ("HUB_ACCOUNT_ID", "hub")],
                "HUB_ACCOUNT_ID",
            ),
            (
                &[
                    ("MEMBER_ACCOUNTS", A),
                    ("HUB_ACCOUNT_ID", HUB),
                    ("MEMBER_ROLE_NAME", "role/with/path"),
                ],
                "MEMBER_ROLE_NAME",
            ),
        ];
        for (pairs, variable) in bad {
            assert_eq!(hub(pairs).unwrap_err().variable, *variable, "{pairs:?}");
        }
    }

    #[test]
    fn account_names_are_read_checked_and_shown_with_the_id() {
        let n = AccountNames::from_lookup(&lookup_in(&[(
            "ACCOUNT_NAMES",
            r#"{"111111111111": "payments-prod"}"#,
        )]))
        .unwrap();
        assert_eq!(n.describe(A), format!("payments-prod ({A})"));
        assert_eq!(n.describe(B), B);
        assert_eq!(
            AccountNames::from_lookup(&lookup_in(&[])).unwrap(),
            AccountNames::default()
        );
        for bad in [
            r#"["x"]"#,
            r#"{"prod": "x"}"#,
            r#"{"111111111111": ""}"#,
            "{",
        ] {
            let e = AccountNames::from_lookup(&lookup_in(&[("ACCOUNT_NAMES", bad)])).unwrap_err();
            assert_eq!(e.variable, "ACCOUNT_NAMES", "{bad}");
        }
    }
}
