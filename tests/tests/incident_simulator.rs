//! The incident invariants over seeded random alarm histories (see
//! `fleetguard_integration::incident_sim`): the real `alarm-fanout` and the real notification
//! pipeline over the in-memory ledger and the fake services, with faults.
//!
//! `make test` runs `SIM_SEEDS` seeds (default 1000); `make sim-long` many more. A failure prints
//! the seed; `SIM_SEED=<n> cargo test -p fleetguard-integration --test incident_simulator`
//! replays exactly that one.

use fleetguard_integration::{incident_sim, sim};

// On every core, each on paused time (`sim::run_seeds`).
#[test]
fn incident_invariants_hold_over_seeded_alarm_histories() {
    let seeds = sim::seeds();
    let mut failures = Vec::new();
    let mut total = incident_sim::Stats::default();
    for (seed, outcome) in sim::run_seeds(&seeds, incident_sim::run) {
        match outcome {
            Ok(s) => total.add(&s),
            Err(v) => failures.push((seed, v)),
        }
    }
    sim::report(
        "incident simulator",
        "incident_simulator",
        &seeds,
        &failures,
        &total,
    );
    if seeds.len() < 100 {
        return;
    }
    // The runs exercised what they claim to.
    assert!(
        total.failed_invocations > 0 && total.dropped_to_dlq > 0 && total.concurrent > 0,
        "{total:?}"
    );
    assert!(
        total.unknown_outcomes > 0 && total.second_copies > 0 && total.records_lost > 0,
        "{total:?}"
    );
    assert!(
        total.duplicates > 0 && total.pagerduty_incidents > 0 && total.timed_out > 0,
        "{total:?}"
    );
}
