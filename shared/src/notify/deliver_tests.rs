//! Tests of `deliver.rs`.

use super::super::Phase;
use super::*;

#[test]
fn dedupe_keys_are_bounded() {
    assert_eq!(dedupe_key("k", "sns:t"), "k|sns:t");
    let long = dedupe_key(&"x".repeat(5000), "sns:t");
    assert!(long.len() < 1100);
    assert_ne!(long, dedupe_key(&"x".repeat(5001), "sns:t"));
    // Stable across builds and Rust releases: a fixed digest.
    assert!(
        long.ends_with("…972cf9d7692afdf8a5ab429e9e50e03e"),
        "{long}"
    );
}

#[test]
fn delivery_error_names_destinations() {
    let e = DeliveryError {
        kind: "alarm",
        failed: vec![(
            "slack:arn:secret".into(),
            "HTTP 500 server_error after 5 attempts".into(),
        )],
        delivered: vec!["sns:arn:topic".into()],
        given_up: vec![],
    };
    assert_eq!(
        e.to_string(),
        "alarm notification not delivered to slack:arn:secret (HTTP 500 server_error after 5 attempts); delivered to sns:arn:topic"
    );
    assert!(!e.is_final(), "a 500 is retried");
    let given_up = DeliveryError {
        given_up: vec!["slack:arn:secret".into()],
        ..e
    };
    assert!(given_up.is_final());
}

#[test]
fn insufficient_data_follows_the_routes_policy() {
    let mut n = Notification::new(
        NotificationKind::Alarm,
        super::super::Severity::High,
        "t",
        "k",
    )
    .incident("a", Phase::Updated);
    n.state = Some("INSUFFICIENT_DATA".into());
    assert_eq!(
        transition(&n, InsufficientData::Update),
        Some(Transition::UpdateIfOpen)
    );
    assert_eq!(
        transition(&n, InsufficientData::Open),
        Some(Transition::Open)
    );
    assert_eq!(transition(&n, InsufficientData::Ignore), None);
    n.state = Some("ALARM".into());
    n.incident = Some(super::super::Incident {
        key: "a".into(),
        phase: Phase::Opened,
    });
    assert_eq!(
        transition(&n, InsufficientData::Ignore),
        Some(Transition::Open)
    );
}
