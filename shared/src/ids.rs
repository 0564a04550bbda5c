//! Identifiers that decide *what* gets acted on. These are strict: a malformed instance id
//! or token must never reach a drain or a lifecycle call.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// An EC2 instance id: `i-` and 8 (older instances) or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("i-").ok_or_else(|| {
            format!(
                "not an EC2 instance id (expected i-…): {}",
                crate::text::shown(s, 64)
            )
        })?;
        let ok_len = hex.len() == 8 || hex.len() == 17;
        let ok_chars = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok_len && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "not an EC2 instance id (expected i- and 8 or 17 lowercase hex digits): {}",
                crate::text::shown(s, 64)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        InstanceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Auto Scaling lifecycle action token: 36 characters (a UUID in practice; AWS's own
/// documentation samples end in `EXAMPLE`, so only the length and alphabet are checked).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LifecycleActionToken(String);

impl LifecycleActionToken {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 36 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "not a lifecycle action token (expected 36 characters of letters, digits and '-'): {}",
                crate::text::shown(s, 64)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Tokens authorise completing a lifecycle action: keep them out of Debug output.
impl fmt::Debug for LifecycleActionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LifecycleActionToken({}…)", &self.0[..8])
    }
}

impl<'de> Deserialize<'de> for LifecycleActionToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LifecycleActionToken::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Auto Scaling group name: 1–255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AutoScalingGroupName(String);

impl AutoScalingGroupName {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
            Err(format!(
                "not an Auto Scaling group name (1-255 printable characters): {}",
                crate::text::shown(s, 64)
            ))
        } else {
            Ok(Self(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AutoScalingGroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AutoScalingGroupName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AutoScalingGroupName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Amazon Resource Name, split into its parts.
/// `arn:partition:service:region:account-id:resource`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Arn {
    raw: String,
    partition_end: usize,
    service_end: usize,
    region_end: usize,
    account_end: usize,
}

impl Arn {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "not an ARN (expected arn:partition:service:region:account:resource): {}",
                crate::text::shown(s, 80)
            )
        };
        let rest = s.strip_prefix("arn:").ok_or_else(bad)?;
        let mut ends = [0usize; 4];
        let mut pos = 4;
        let mut tail = rest;
        for end in ends.iter_mut() {
            let i = tail.find(':').ok_or_else(bad)?;
            pos += i;
            *end = pos;
            pos += 1;
            tail = &tail[i + 1..];
        }
        let partition = &s[4..ends[0]];
        let service = &s[ends[0] + 1..ends[1]];
        if partition.is_empty()
            || service.is_empty()
            || tail.is_empty()
            || s.chars().any(char::is_control)
        {
            return Err(bad());
        }
        Ok(Self {
            raw: s.to_owned(),
            partition_end: ends[0],
            service_end: ends[1],
            region_end: ends[2],
            account_end: ends[3],
        })
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn partition(&self) -> &str {
        &self.raw[4..self.partition_end]
    }
    pub fn service(&self) -> &str {
        &self.raw[self.partition_end + 1..self.service_end]
    }
    pub fn region(&self) -> &str {
        &self.raw[self.service_end + 1..self.region_end]
    }
    pub fn account(&self) -> &str {
        &self.raw[self.region_end + 1..self.account_end]
    }
    /// Everything after the account: `service/cluster/name`, `alarm:Name`, `instance/i-…`.
    pub fn resource(&self) -> &str {
        &self.raw[self.account_end + 1..]
    }
    /// The last `/`- or `:`-separated part of the resource, e.g. a cluster's or alarm's name.
    pub fn resource_name(&self) -> &str {
        let r = self.resource();
        r.rsplit(['/', ':']).next().unwrap_or(r)
    }
}

impl From<Arn> for String {
    fn from(a: Arn) -> String {
        a.raw
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Arn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Arn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An ECS service, as named by the ARN in an ECS event's `resources`:
/// `arn:aws:ecs:region:account:service/cluster/service` (or the old form without the cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EcsServiceRef {
    pub arn: Arn,
    /// `None` for the old ARN format, which does not name the cluster.
    pub cluster: Option<String>,
    pub service: String,
}

impl EcsServiceRef {
    pub fn from_arn(arn: Arn) -> Result<Self, String> {
        if arn.service() != "ecs" {
            return Err(format!("not an ECS ARN: {arn}"));
        }
        let parts: Vec<&str> = arn.resource().split('/').collect();
        let (cluster, service) = match parts.as_slice() {
            ["service", cluster, service] if !cluster.is_empty() && !service.is_empty() => {
                (Some((*cluster).to_owned()), (*service).to_owned())
            }
            ["service", service] if !service.is_empty() => (None, (*service).to_owned()),
            _ => return Err(format!("not an ECS service ARN: {arn}")),
        };
        Ok(Self {
            arn,
            cluster,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        assert!(InstanceId::parse("i-1234567890abcdef0").is_ok());
        assert!(InstanceId::parse("i-f3a8506b").is_ok());
        assert!(InstanceId::parse("i-1234567890ABCDEF0").is_err());
        assert!(InstanceId::parse("i-123").is_err());
        assert!(InstanceId::parse("instance").is_err());
        assert!(InstanceId::parse("").is_err());
        assert!(InstanceId::parse("i-1234567890abcdef0\n").is_err());
    }

    #[test]
    fn tokens_are_checked_and_hidden() {
        let t = LifecycleActionToken::parse("87654321-4321-4321-4321-210987654321").unwrap();
        assert_eq!(format!("{t:?}"), "LifecycleActionToken(87654321…)");
        assert!(LifecycleActionToken::parse("71514b9d-6a40-4b26-8523-05e7eEXAMPLE").is_ok());
        assert!(LifecycleActionToken::parse("short").is_err());
        assert!(LifecycleActionToken::parse("87654321-4321-4321-4321-21098765432é").is_err());
    }

    #[test]
    fn arns_split_into_parts() {
        let a = Arn::parse("arn:aws:cloudwatch:us-east-1:123456789012:alarm:High CPU").unwrap();
        assert_eq!(a.partition(), "aws");
        assert_eq!(a.service(), "cloudwatch");
        assert_eq!(a.region(), "us-east-1");
        assert_eq!(a.account(), "123456789012");
        assert_eq!(a.resource(), "alarm:High CPU");
        assert_eq!(a.resource_name(), "High CPU");
        let s =
            Arn::parse("arn:aws:ecs:us-west-2:111122223333:service/default/servicetest").unwrap();
        let svc = EcsServiceRef::from_arn(s).unwrap();
        assert_eq!(svc.cluster.as_deref(), Some("default"));
        assert_eq!(svc.service, "servicetest");
        assert!(Arn::parse("auto-scaling-group-arn").is_err());
        assert!(Arn::parse("arn:aws:ecs").is_err());
        assert!(Arn::parse("arn::ecs:r:a:x").is_err());
    }
}
