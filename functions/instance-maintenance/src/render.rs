//! The messages: a scheduled change announced, an instance taken out of service before its
//! window, put back after a reboot, and an instance stopping. Pure.

use fleetguard::notify::{Notification, NotificationKind, Severity, console_host};
use fleetguard::out_of_service::Findings;
pub use fleetguard::out_of_service::target_list;
use std::time::Duration;

/// What every instance message shows, and where it links.
#[derive(Debug, Clone)]
pub struct InstanceMessage<'a> {
    pub kind: NotificationKind,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub dedupe_key: String,
    pub instance: &'a str,
    pub findings: &'a Findings,
    /// Fields after the instance's own (window, event type, what was done).
    pub fields: Vec<(String, String)>,
    pub region: &'a str,
    /// The Health event, for a link to it.
    pub health_event_arn: Option<&'a str>,
}

/// `2027-06-05 15:10 UTC`
pub fn when(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| epoch.to_string())
}

pub fn render(m: InstanceMessage<'_>) -> Notification {
    let f = m.findings;
    let ci = f.container_instance.as_ref();
    let mut n = Notification::new(m.kind, m.severity, m.title, m.dedupe_key).summary(m.summary);
    n.resource_name = Some(m.instance.to_owned());
    let instance_type = f.instance_type();
    let az = f.availability_zone();
    n = n
        .field("Instance", m.instance)
        .field("Instance type", instance_type.unwrap_or_default())
        .field("Availability Zone", az.unwrap_or_default())
        .field(
            "Auto Scaling group",
            f.group
                .as_ref()
                .map(|g| g.auto_scaling_group_name.clone())
                .unwrap_or_default(),
        );
    if let Some(ci) = ci {
        n = n
            .field("Cluster", ci.cluster_name().to_owned())
            .field("Container instance", format!("{} ({})", ci.arn, ci.status));
    }
    if !f.registrations.is_empty() {
        n = n.field("Target groups", target_list(&f.registrations));
    }
    for (k, v) in m.fields {
        n = n.field(k, v);
    }
    if !m.region.is_empty() {
        let host = console_host("aws", m.region);
        n = n.link(
            "Instance",
            format!(
                "https://{host}/ec2/home?region={}#InstanceDetails:instanceId={}",
                m.region, m.instance
            ),
        );
        if let Some(ci) = ci {
            n = n.link(
                "Cluster",
                format!(
                    "https://{host}/ecs/v2/clusters/{}/infrastructure?region={}",
                    ci.cluster_name(),
                    m.region
                ),
            );
        }
    }
    if let Some(arn) = m.health_event_arn {
        n = n.link(
            "AWS Health event",
            format!(
                "https://health.aws.amazon.com/health/home#/account/event-log?eventID={}",
                fleetguard::notify::url_encode(arn)
            ),
        );
    }
    n.dedupe_ttl = Duration::from_secs(30 * 24 * 3600);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetguard::ports::Registration;

    #[test]
    fn message_names_the_instance_its_pool_and_links() {
        let f = Findings {
            registrations: vec![Registration {
                target_group_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/0123"
                    .into(),
                port: Some(80),
                state: "healthy".into(),
            }],
            ..Findings::default()
        };
        let n = render(InstanceMessage {
            kind: NotificationKind::ScheduledMaintenance,
            severity: Severity::High,
            title: "t".into(),
            summary: "s".into(),
            dedupe_key: "k".into(),
            instance: "i-0a1b2c3d4e5f60718",
            findings: &f,
            fields: vec![("Window".into(), when(1_812_000_000))],
            region: "eu-west-1",
            health_event_arn: Some("arn:aws:health:eu-west-1::event/EC2/X/Y"),
        });
        let fields: Vec<(&str, &str)> = n
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert!(
            fields.contains(&("Target groups", "web port 80")),
            "{fields:?}"
        );
        assert!(
            fields.contains(&("Window", "2027-06-03 05:20 UTC")),
            "{fields:?}"
        );
        assert_eq!(n.links.len(), 2);
        assert!(n.links[1].url.contains("eventID=arn%3Aaws%3Ahealth"));
    }
}
