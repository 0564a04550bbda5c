//! The storm invariants over seeded random storms (see `fleetguard_integration::storm_sim`): the
//! real `alarm-fanout` and the real notification pipeline over the in-memory ledger and the fake
//! services, hundreds of alarms at once, with faults.
//!
//! `make test` runs `STORM_SEEDS` seeds (default 5: each is hundreds of invocations); `make
//! sim-long` many more. A failure prints the seed; `SIM_SEED=<n> cargo test -p
//! fleetguard-integration --test storm_simulator` replays exactly that one.

use fleetguard_integration::{sim, storm_sim};

// On every core, each on paused time (`sim::run_seeds`): the flusher's pace, Retry-After and
// the rate slots cost no wall-clock time.
#[test]
fn storm_invariants_hold_over_seeded_storms() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(_) => sim::seeds(),
        Err(_) => {
            let n: u64 = std::env::var("STORM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(5);
            assert!(n > 0, "STORM_SEEDS=0 would run no seed");
            (1..=n).collect()
        }
    };
    let mut failures = Vec::new();
    let mut total = storm_sim::Stats::default();
    for (seed, outcome) in sim::run_seeds(&seeds, storm_sim::run) {
        match outcome {
            Ok(s) => total.add(&s),
            Err(v) => failures.push((seed, v)),
        }
    }
    sim::report(
        "storm simulator",
        "storm_simulator",
        &seeds,
        &failures,
        &total,
    );
    if seeds.len() < 5 {
        return;
    }
    // The runs exercised what they claim to.
    assert!(
        total.storms > 0 && total.members > 0 && total.failed_invocations > 0,
        "{total:?}"
    );
    assert!(
        total.unknown_outcomes > 0 && total.stopped > 0 && total.peak_concurrency >= 10,
        "{total:?}"
    );
}
