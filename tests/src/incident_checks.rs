//! The incident simulator's invariants, checked over what the fakes saw (see `incident_sim`).

use super::*;

pub(super) fn check(
    services: &FakeServices,
    changes: &[Change],
    sources: usize,
    policy: &str,
    tracked: &BTreeMap<String, String>,
    losses: &[i64],
    stats: &mut Stats,
) -> Vec<String> {
    let mut v = Vec::new();
    let seen = services.seen();
    stats.unknown_outcomes = seen.iter().filter(|s| s.unknown).count() as u64;
    // No transition lost; copies within the bound.
    for c in changes {
        for dest in [TEAMS, SNS] {
            let of = |f: &dyn Fn(&fleetguard::notify::destinations::fake::Seen) -> bool| {
                seen.iter()
                    .filter(|s| s.destination == dest && s.origin == c.origin && f(s))
                    .count()
            };
            let landed = of(&|s| s.landed);
            let unknown = of(&|s| s.unknown);
            if c.delivered && landed == 0 {
                v.push(format!(
                    "{} {} at {}: delivered, but never reached {dest}",
                    c.source, c.state, c.at
                ));
            }
            if landed > 2 || (landed == 2 && unknown == 0 && !c.stopped) {
                v.push(format!(
                    "{} {} at {}: {landed} copies at {dest} ({unknown} unknown outcomes)",
                    c.source, c.state, c.at
                ));
            }
            stats.second_copies += landed.saturating_sub(1) as u64;
        }
        if !c.delivered && !c.dropped {
            v.push(format!(
                "{} {} at {}: neither delivered nor in the on-failure destination",
                c.source, c.state, c.at
            ));
        }
    }
    let alerts = services.alerts();
    stats.pagerduty_incidents = alerts.iter().map(|a| a.incidents as u64).sum();
    let messages = services.slack_messages();
    stats.slack_messages = messages.len() as u64;
    for source in 0..sources {
        let mine: Vec<&Change> = changes.iter().filter(|c| c.source == source).collect();
        let Some(name) = mine
            .first()
            .map(|c| c.event["detail"]["alarmName"].as_str().unwrap().to_owned())
        else {
            continue;
        };
        let keys: BTreeSet<&str> = alerts
            .iter()
            .filter(|a| a.dedup_key.contains(&format!(":alarm:{name}|")))
            .map(|a| a.dedup_key.as_str())
            .collect();
        if keys.len() > 1 {
            v.push(format!("{name}: {} PagerDuty keys: {keys:?}", keys.len()));
        }
        // The documented limit: once its records are lost, an incident cannot tell a late event
        // from a new one. A source that got an event after a loss older than one delivered before
        // it is not held to its latest state.
        let late_after_loss = mine.iter().any(|c| {
            c.delivered_at.is_some_and(|d| {
                losses.iter().any(|&l| {
                    l <= d
                        && mine
                            .iter()
                            .any(|x| x.tried_at.is_some_and(|xt| xt < l) && x.at > c.at)
                })
            })
        });
        if late_after_loss {
            stats.unchecked_after_loss += 1;
            continue;
        }
        let all_delivered = mine.iter().all(|c| c.delivered);
        let last = mine.iter().max_by_key(|c| c.at).unwrap();
        let alert = alerts
            .iter()
            .find(|a| a.dedup_key.contains(&format!(":alarm:{name}|")));
        if all_delivered && last.state == "OK" && alert.is_some_and(|a| a.status != "resolved") {
            v.push(format!(
                "{name}: its last change is OK, delivered, and its PagerDuty alert is {}",
                alert.unwrap().status
            ));
        }
        if all_delivered && last.state == "ALARM" && alert.is_none_or(|a| a.status != "triggered") {
            v.push(format!(
                "{name}: its last change is ALARM, delivered, and no PagerDuty alert is open"
            ));
        }
        // The message the incident follows shows the source's latest state. Any other message
        // of it in the channel is a copy whose post's outcome was unknown (it keeps the state it
        // was posted with), or an earlier incident's.
        let ts = tracked
            .iter()
            .find(|(k, _)| k.contains(&format!(":alarm:{name}|")))
            .map(|(_, ts)| ts.as_str());
        let shown = messages.iter().find(|m| Some(m.ts.as_str()) == ts);
        let latest = messages
            .iter()
            .filter(|m| m.body.to_string().contains(&name))
            .max_by(|a, b| a.posted_at.cmp(&b.posted_at).then(a.ts.cmp(&b.ts)));
        if let (Some(m), Some(l)) = (shown, latest)
            && l.ts != m.ts
        {
            // A post whose answer was lost, or made by an invocation stopped part-way.
            let unknown_post = mine.iter().any(|c| c.stopped)
                || seen.iter().any(|s| {
                    s.unknown
                        && s.method == fleetguard::notify::services::Method::ChatPostMessage
                        && s.body.to_string().contains(&name)
                });
            if !unknown_post && l.posted_at > m.posted_at {
                v.push(format!("{name}: a later message than the one its incident follows, with no unknown outcome"));
            }
        }
        if all_delivered && let Some(m) = shown {
            let colour = m.body["attachments"][0]["color"]
                .as_str()
                .unwrap_or_default();
            let last_ao = mine
                .iter()
                .filter(|c| c.state != "INSUFFICIENT_DATA")
                .max_by_key(|c| c.at);
            let expected: BTreeMap<&str, &str> = [
                ("ALARM", "#E01E5A"),
                ("OK", "#2EB67D"),
                ("INSUFFICIENT_DATA", "#9E9E9E"),
            ]
            .into();
            let mut ok_colours = BTreeSet::new();
            match last_ao {
                Some(c) => {
                    ok_colours.insert(expected[c.state]);
                    // An INSUFFICIENT_DATA after an ALARM shows on the open incident (or opens
                    // one, under the `open` policy).
                    if (c.state == "ALARM" || policy == "open")
                        && mine
                            .iter()
                            .any(|x| x.state == "INSUFFICIENT_DATA" && x.at > c.at)
                    {
                        ok_colours.insert(expected["INSUFFICIENT_DATA"]);
                    }
                }
                None => {
                    ok_colours.insert(expected["INSUFFICIENT_DATA"]);
                }
            }
            if !ok_colours.contains(colour) {
                let shown: Vec<(i64, &str, u32)> = messages
                    .iter()
                    .filter(|m| m.body.to_string().contains(&name))
                    .map(|m| {
                        (
                            m.posted_at - T0,
                            m.body["attachments"][0]["color"]
                                .as_str()
                                .unwrap_or_default(),
                            m.updates,
                        )
                    })
                    .collect();
                v.push(format!(
                    "{name}: its Slack message shows {colour}, its changes were {:?}; messages (posted, colour, updates): {shown:?}",
                    mine.iter().map(|c| (c.state, c.at - T0)).collect::<Vec<_>>()
                ));
            }
        }
    }
    v
}
