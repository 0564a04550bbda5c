//! The parser never panics: arbitrary bytes, arbitrary JSON, and the real sample events with
//! random mutations. Bounded (a few hundred cases each, about a second); set `PROPTEST_CASES`
//! for longer runs, or use the `cargo fuzz` target in `fuzz/` for coverage-guided ones.

use fleetguard::{parse_event, parse_value};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::OnceLock;

fn samples() -> &'static Vec<Value> {
    static SAMPLES: OnceLock<Vec<Value>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let manifest: Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        manifest
            .keys()
            .filter_map(|k| serde_json::from_slice::<Value>(&std::fs::read(dir.join(k)).ok()?).ok())
            .filter(|v| v.to_string().len() < 100_000)
            .collect()
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("i-0a1b2c3d4e5f60718"),
            Just("arn:aws:ecs:eu-west-1:1:service/c/s"),
            Just("yyyy-mm-ddThh:mm:ssZ"),
            Just("EC2 Spot Instance Interruption Warning"),
            Just("CloudWatch Alarm State Change"),
            Just("ALARM"),
            Just("{\"AlarmName\":\"x\",\"NewStateValue\":\"OK\"}"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,12}",
                    Just("detail-type".to_owned()),
                    Just("detail".to_owned()),
                    Just("Records".to_owned()),
                    Just("alarmData".to_owned()),
                    Just("resources".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replace the node at a pseudo-random position (chosen by `pick`) with `replacement`,
/// or delete it when it is an object member and `delete` is set.
fn mutate(v: &mut Value, pick: &mut u64, replacement: &Value, delete: bool) -> bool {
    let here = *pick == 0;
    *pick = pick.saturating_sub(1);
    if here {
        *v = replacement.clone();
        return true;
    }
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if delete && *pick == 0 {
                    m.remove(&k);
                    return true;
                }
                if mutate(m.get_mut(&k).unwrap(), pick, replacement, delete) {
                    return true;
                }
            }
            false
        }
        Value::Array(a) => a.iter_mut().any(|x| mutate(x, pick, replacement, delete)),
        _ => false,
    }
}

fn exercise(v: &Value) {
    if let Ok(ev) = parse_value(v) {
        // Everything a handler does with a parsed event must not panic either.
        let _ = ev.subject();
        let _ = ev.kind();
        let _ = serde_json::to_string(&ev).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        exercise(&v);
    }

    #[test]
    fn mutated_samples_never_panic(idx in any::<prop::sample::Index>(), pick in 0u64..200, replacement in arb_json(), delete in any::<bool>()) {
        let mut v = idx.get(samples()).clone();
        mutate(&mut v, &mut pick.clone(), &replacement, delete);
        exercise(&v);
        // And the same document after a round trip through bytes, possibly cut short.
        let bytes = serde_json::to_vec(&v).unwrap();
        let cut = (pick as usize * 7) % (bytes.len() + 1);
        let _ = parse_event(&bytes[..cut]);
    }

    #[test]
    fn sns_wrapped_arbitrary_messages_never_panic(inner in arb_json()) {
        let v = serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": inner.to_string(), "TopicArn": "arn:aws:sns:eu-west-1:1:t"}}]});
        exercise(&v);
    }
}

#[test]
fn a_byte_order_mark_is_not_an_error() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        br#"{"version":"0","id":"e1","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2",
            "account":"123456789012","time":"2020-01-01T00:00:00Z","region":"us-east-1","resources":[],
            "detail":{"instance-id":"i-0abcdef1234567890"}}"#,
    );
    assert_eq!(
        fleetguard::parse_event(&bytes).unwrap().kind(),
        fleetguard::EventKind::RebalanceRecommendation
    );
}

#[test]
fn another_services_sns_message_is_acknowledged_not_retried() {
    let v = serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
        "Message": "{\"source\":\"aws.codepipeline\",\"pipeline\":\"web\",\"state\":\"FAILED\"}",
        "Timestamp": "2026-11-20T10:00:00.000Z"}}]});
    let e = fleetguard::parse_value(&v).unwrap();
    assert_eq!(e.kind(), fleetguard::EventKind::Unrecognised);
    assert_eq!(e.envelope.region, "us-east-1");
}
