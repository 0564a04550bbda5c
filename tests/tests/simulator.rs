//! The safety invariants over seeded random fleets (see `fleetguard_integration::sim`).
//!
//! `make test` runs `SIM_SEEDS` seeds (default 1000); `make sim-long` many more. A failure
//! prints the seed; `SIM_SEED=<n> cargo test -p fleetguard-integration --test simulator`
//! replays exactly that one (with `SIM_LOG=1` for the handlers' logs).

use fleetguard_integration::sim;

// On every core, each on paused time (`sim::run_seeds`).
#[test]
fn invariants_hold_over_seeded_fleets() {
    let seeds = sim::seeds();
    let mut failures = Vec::new();
    let mut total = sim::Stats::default();
    for (seed, outcome) in sim::run_seeds(&seeds, sim::run) {
        match outcome {
            Ok(s) => {
                total.instances += s.instances;
                total.invocations += s.invocations;
                total.failed_invocations += s.failed_invocations;
                total.dropped_to_dlq += s.dropped_to_dlq;
                total.drained += s.drained;
                total.forced += s.forced;
                total.heartbeats += s.heartbeats;
                total.spot_warnings += s.spot_warnings;
                total.warm_pool_returns += s.warm_pool_returns;
                total.concurrent_duplicates += s.concurrent_duplicates;
                total.timed_out += s.timed_out;
                total.at_limit += s.at_limit;
                total.recycled += s.recycled;
                total.maintenance_windows += s.maintenance_windows;
                total.schedules_fired += s.schedules_fired;
                total.unmarked_told += s.unmarked_told;
                total.user_stops += s.user_stops;
                total.retirements += s.retirements;
                total.managed_draining += s.managed_draining;
                total.replacements += s.replacements;
                total.plain_stops += s.plain_stops;
                total.plain_running_lost += s.plain_running_lost;
                total.task_events += s.task_events;
                total.alarm_transitions += s.alarm_transitions;
            }
            Err(v) => failures.push((seed, v)),
        }
    }
    sim::report("fleet simulator", "simulator", &seeds, &failures, &total);
    // The runs exercised what they claim to (a replay of one seed need not).
    if seeds.len() < 100 {
        return;
    }
    assert!(
        total.drained > 0 && total.forced > 0 && total.heartbeats > 0,
        "{total:?}"
    );
    assert!(
        total.failed_invocations > 0 && total.spot_warnings > 0,
        "{total:?}"
    );
    assert!(
        total.warm_pool_returns > 0 && total.concurrent_duplicates > 0 && total.timed_out > 0,
        "{total:?}"
    );
    // Instances at ECS's attribute limit were drained (and their drains undone: checked).
    assert!(total.at_limit > 0, "{total:?}");
    assert!(
        total.recycled > 0 && total.user_stops > 0 && total.managed_draining > 0,
        "{total:?}"
    );
    assert!(
        total.maintenance_windows > 0
            && total.schedules_fired > 0
            && total.retirements > 0
            && total.replacements > 0,
        "{total:?}"
    );
    assert!(
        total.task_events > 0 && total.alarm_transitions > 0 && total.plain_stops > 0,
        "{total:?}"
    );
}
