//! The storm simulator's invariants, checked over what the fakes and the ledger hold (see `storm_sim`).

use super::*;

pub(super) async fn check(
    services: &FakeServices,
    ledger: &MemoryLedger,
    changes: &[Change],
    sources: usize,
    stats: &mut Stats,
) -> Result<Stats, Vec<String>> {
    let mut v = Vec::new();
    let seen = services.seen();
    stats.unknown_outcomes = seen.iter().filter(|s| s.unknown).count() as u64;
    // The channel's pace (chat.postMessage: one a second), the workspace's for chat.update
    // (Tier 3, 50 a minute: at most one a second), the routing key's (120 a minute: two a second).
    let mut per_second: BTreeMap<(&str, i64), u32> = BTreeMap::new();
    for s in &seen {
        let pace = match s.method {
            Method::ChatPostMessage if s.destination == CHANNEL => "chat.postMessage to #ops",
            Method::ChatUpdate => "chat.update",
            Method::Enqueue => "PagerDuty's routing key",
            _ => continue,
        };
        *per_second.entry((pace, s.at)).or_default() += 1;
    }
    for ((pace, at), calls) in &per_second {
        let limit = if pace.starts_with("PagerDuty") { 2 } else { 1 };
        if *calls > limit && std::env::var_os("SIM_TRACE").is_some() {
            for s in seen
                .iter()
                .filter(|s| s.at == *at && s.method == Method::ChatUpdate)
            {
                println!(
                    "at t+{} tick {} {} landed {} unknown {} refused {:?}",
                    s.at - T0,
                    s.tick,
                    s.origin,
                    s.landed,
                    s.unknown,
                    s.refused
                );
            }
        }
        if *calls > limit {
            v.push(format!("{calls} calls of {pace} in second t+{}", at - T0));
        }
    }
    stats.slack_calls = seen.iter().filter(|s| s.destination == CHANNEL).count() as u64;
    stats.teams_cards = services.landed("teams:teams").len() as u64;
    // No transition lost.
    // A change never delivered (a destination given up on after two unknown outcomes, the
    // documented bound) stays in the on-failure destination; its source is not held to the
    // final-state checks.
    let mut undelivered = BTreeSet::new();
    for c in changes {
        if !c.delivered {
            stats.kept_in_dlq += 1;
            undelivered.insert(
                c.event["detail"]["alarmName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        } else if !seen
            .iter()
            .any(|s| s.destination == SNS && s.origin == c.origin && s.landed)
        {
            v.push(format!(
                "source {} {} at t+{}: delivered, never reached SNS",
                c.source,
                c.state,
                c.at - T0
            ));
        }
    }
    // The storms, their members and digest records, from the ledger.
    let keys = ledger.keys();
    let storms: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let parts: Vec<&str> = k.split('|').collect();
            parts.len() == 3 && parts[0] == "storm" && parts[2].parse::<i64>().is_ok()
        })
        .collect();
    stats.storms = storms.len() as u64;
    let messages = services.slack_messages();
    let digests: Vec<_> = messages
        .iter()
        .filter(|m| m.text.contains("Storm on") || m.text.contains("Storm over"))
        .collect();
    stats.slack_messages = messages.len() as u64;
    let unknown_digest_posts = seen
        .iter()
        .filter(|s| {
            s.unknown
                && s.method == Method::ChatPostMessage
                && s.body.to_string().contains("Storm on")
        })
        .count();
    if let Ok(name) = std::env::var("SIM_TRACE_SOURCE") {
        for s in seen.iter().filter(|s| s.origin.contains(&name)) {
            println!(
                "call t+{} {} {} {} landed {} unknown {} refused {:?}",
                s.at - T0,
                s.destination,
                s.method.as_str(),
                s.origin
                    .rsplit_once("|alarm:")
                    .map_or(s.origin.as_str(), |(_, o)| o),
                s.landed,
                s.unknown,
                s.refused
            );
        }
    }
    if std::env::var_os("SIM_TRACE").is_some() {
        for m in &digests {
            println!(
                "digest {} posted t+{} updates {}: {}",
                m.ts,
                m.posted_at - T0,
                m.updates,
                m.text
            );
        }
    }
    // A digest that can no longer be edited (deleted, past the edit window) gets a new message.
    let gone = seen
        .iter()
        .filter(|s| {
            s.method == Method::ChatUpdate
                && s.refused.as_deref().is_some_and(|c| {
                    matches!(
                        c,
                        "edit_window_closed" | "message_not_found" | "cant_update_message"
                    )
                })
        })
        .count();
    if digests.len() > storms.len() + unknown_digest_posts + gone {
        v.push(format!(
            "{} digest messages for {} storms ({unknown_digest_posts} posts with a lost answer, \
             {gone} messages no longer editable)",
            digests.len(),
            storms.len()
        ));
    }
    let alerts = services.alerts();
    stats.pagerduty_alerts = alerts.len() as u64;
    let storm_alerts: Vec<_> = alerts
        .iter()
        .filter(|a| a.dedup_key.contains("|storm|"))
        .collect();
    if storm_alerts.len() != storms.len() {
        v.push(format!(
            "{} PagerDuty storm alerts for {} storms",
            storm_alerts.len(),
            storms.len()
        ));
    }
    if let Some(a) = alerts.iter().find(|a| {
        a.status != "resolved"
            && !undelivered
                .iter()
                .any(|name| a.dedup_key.ends_with(&format!(":alarm:{name}|")))
    }) {
        v.push(format!(
            "every source recovered, and PagerDuty's {} is {}",
            a.dedup_key, a.status
        ));
    }
    // Every member's last change is its state in the digest.
    let last: BTreeMap<String, &Change> = (0..sources)
        .filter_map(|s| {
            let c = changes
                .iter()
                .filter(|c| c.source == s)
                .max_by_key(|c| c.at)?;
            Some((c.event["detail"]["alarmName"].as_str()?.to_owned(), c))
        })
        .collect();
    for storm in &storms {
        let mut members = BTreeMap::new();
        for shard in 0..fleetguard::notify::storm::book::SHARDS {
            if let Some(item) = ledger.get(&format!("{storm}|{shard}")).await.unwrap() {
                for (k, body) in &item.s {
                    if k.starts_with("m:") {
                        let m: fleetguard::notify::storm::Member =
                            serde_json::from_str(body).unwrap();
                        members.insert(m.name.clone(), m);
                    }
                }
            }
        }
        stats.members += members.len() as u64;
        for (name, m) in &members {
            let Some(c) = last.get(name).filter(|_| !undelivered.contains(name)) else {
                continue;
            };
            if !m.resolved || m.state != "OK" {
                v.push(format!(
                    "{storm}: {name} shows {} in the digest, its last change is {} at t+{}",
                    m.state,
                    c.state,
                    c.at - T0
                ));
            }
        }
        // The message the storm's record follows shows it over, counting every member.
        let mut record = None;
        for k in keys
            .iter()
            .filter(|k| k.starts_with(&format!("digest|{}", &storm["storm|".len()..])))
        {
            if let Some(item) = ledger.get(k).await.unwrap()
                && let Some(ts) = item.get_s("ts")
            {
                record = Some(ts.to_owned());
            }
        }
        let shown = record.and_then(|ts| digests.iter().find(|m| m.ts == ts));
        match shown {
            None => v.push(format!("{storm}: no Slack digest message recorded")),
            Some(m) => {
                let over = format!("all {} sources recovered", members.len());
                if !m.text.contains(&over) {
                    v.push(format!(
                        "{storm}: its digest shows {:?}, expected {over:?}",
                        m.text
                    ));
                }
            }
        }
    }
    if v.is_empty() { Ok(*stats) } else { Err(v) }
}
