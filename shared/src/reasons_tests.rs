use super::*;
use DrainReason::*;

fn ci(status: &str, mark: Option<DrainMark>) -> ContainerInstance {
    ContainerInstance {
        status: status.into(),
        agent_connected: true,
        drain_mark: mark,
        ..ContainerInstance::default()
    }
}

fn m(reason: DrainReason, at: i64) -> DrainMark {
    DrainMark { reason, at }
}

#[test]
fn marks_round_trip_and_other_values_are_not_ours() {
    for reason in DrainReason::ALL {
        let mark = m(reason, 42);
        assert_eq!(DrainMark::parse(&mark.value()), Some(mark));
    }
    for other in [
        "",
        "drained",
        "reboot@5",
        "maintenance@",
        "maintenance@soon",
    ] {
        assert_eq!(DrainMark::parse(other), None, "{other}");
    }
}

/// The precedence table of docs/out-of-service.md: (existing, arriving, what is written).
#[test]
fn a_weaker_reason_never_replaces_a_stronger_one() {
    let table = [
        // A Spot warning after a rebalance drain: the drain is never undone (issue 23, 2).
        (
            m(Rebalance, 100),
            m(Interruption, 200),
            Some(m(Interruption, 200)),
        ),
        (m(Interruption, 100), m(Rebalance, 200), None),
        (m(Maintenance, 9_000), m(Rebalance, 200), None),
        (
            m(Rebalance, 100),
            m(Maintenance, 9_000),
            Some(m(Maintenance, 9_000)),
        ),
        (m(Maintenance, 9_000), m(SpotStop, 200), None),
        (
            m(Maintenance, 9_000),
            m(Interruption, 200),
            Some(m(Interruption, 200)),
        ),
        (
            m(SpotStop, 100),
            m(Maintenance, 9_000),
            Some(m(Maintenance, 9_000)),
        ),
        (m(WarmPool, 100), m(Rebalance, 200), None),
        (m(Rebalance, 100), m(WarmPool, 200), Some(m(WarmPool, 200))),
        // Of one rank, the later: a window moved later, a second stop.
        (
            m(Maintenance, 9_000),
            m(Maintenance, 12_000),
            Some(m(Maintenance, 12_000)),
        ),
        (m(Maintenance, 12_000), m(Maintenance, 9_000), None),
        (m(Stopped, 100), m(SpotStop, 200), Some(m(SpotStop, 200))),
        (m(SpotStop, 200), m(Stopped, 100), None),
        (m(Rebalance, 100), m(Rebalance, 100), None),
    ];
    for (old, new, written) in table {
        let (drain, write) = drain_needs(&ci("DRAINING", Some(old)), Some(new));
        assert!(!drain, "already DRAINING");
        assert_eq!(write, written, "{old:?} then {new:?}");
    }
}

#[test]
fn what_a_drain_call_writes() {
    // ACTIVE: drained and marked; a final reason is not written where nothing is to undo.
    assert_eq!(
        drain_needs(&ci("ACTIVE", None), Some(m(SpotStop, 1))),
        (true, Some(m(SpotStop, 1)))
    );
    assert_eq!(
        drain_needs(&ci("ACTIVE", None), Some(m(Interruption, 1))),
        (true, None)
    );
    assert_eq!(drain_needs(&ci("ACTIVE", None), None), (true, None));
    // Someone else's drain is never marked: its undo is not ours.
    assert_eq!(
        drain_needs(&ci("DRAINING", None), Some(m(Maintenance, 1))),
        (false, None)
    );
    // Except on the way to a warm pool under our hook: it comes back through our launch hook.
    assert_eq!(
        drain_needs(&ci("DRAINING", None), Some(m(WarmPool, 1))),
        (false, Some(m(WarmPool, 1)))
    );
}

#[test]
fn an_undo_waits_for_its_reason_to_be_over() {
    let undo = |mark: DrainMark, now| {
        decide_undo(mark, &ci("DRAINING", None), Some("InService"), now, 3600)
    };
    // Maintenance carries its window's end (issue 23, 1: a retirement's drain was undone 300 s
    // after it was made, with the retirement 18 minutes away).
    assert_eq!(undo(m(Maintenance, 10_000), 9_999), Undo::Wait);
    assert_eq!(undo(m(Maintenance, 10_000), 10_000), Undo::Activate);
    // A stopped instance cannot be running again within SPOT_RETURN_SECS of its drain.
    assert_eq!(undo(m(Stopped, 10_000), 10_060), Undo::Wait);
    assert_eq!(
        undo(m(Stopped, 10_000), 10_000 + SPOT_RETURN_SECS),
        Undo::Activate
    );
    assert_eq!(undo(m(Rebalance, 10_000), 13_599), Undo::Wait);
    assert_eq!(undo(m(Rebalance, 10_000), 13_600), Undo::Activate);
    // An interruption is never over.
    assert_eq!(undo(m(Interruption, 0), i64::MAX / 2), Undo::Wait);
    assert!(!undo_may_be_due(m(Interruption, 0), i64::MAX / 2, 0));
}

#[test]
fn an_undo_needs_the_instance_back_empty_and_in_service() {
    let mark = m(Maintenance, 0);
    let busy = ContainerInstance {
        running_tasks_count: 2,
        ..ci("DRAINING", None)
    };
    // Tasks still running: it never went (issue 23, 6).
    assert_eq!(
        decide_undo(mark, &busy, Some("InService"), 10_000, 0),
        Undo::Wait
    );
    // A rebalance drain is undone mid-drain: no interruption came.
    assert_eq!(
        decide_undo(m(Rebalance, 0), &busy, Some("InService"), 10_000, 0),
        Undo::Activate
    );
    for state in [
        "Terminating:Wait",
        "Warmed:Pending:Wait",
        "Warmed:Stopped",
        "Standby",
        "Detaching",
    ] {
        assert_eq!(
            decide_undo(mark, &ci("DRAINING", None), Some(state), 10_000, 0),
            Undo::Wait,
            "{state}"
        );
    }
    for state in ["InService", "Pending", "Pending:Wait"] {
        assert_eq!(
            decide_undo(mark, &ci("DRAINING", None), Some(state), 10_000, 0),
            Undo::Activate,
            "{state}"
        );
    }
    let gone = ContainerInstance {
        agent_connected: false,
        ..ci("DRAINING", None)
    };
    assert_eq!(decide_undo(mark, &gone, None, 10_000, 0), Undo::Wait);
    // Out of any group: a warm-pool drain cannot be back; the others can.
    assert_eq!(
        decide_undo(m(WarmPool, 0), &ci("DRAINING", None), None, 10_000, 0),
        Undo::Wait
    );
    assert_eq!(
        decide_undo(mark, &ci("DRAINING", None), None, 10_000, 0),
        Undo::Activate
    );
    // ACTIVE again by someone else: an old mark is removed, a young one may be a drain on its
    // way; an interruption's mark stays.
    assert_eq!(
        decide_undo(m(Stopped, 0), &ci("ACTIVE", None), None, STALE_MARK_SECS, 0),
        Undo::Activate
    );
    assert_eq!(
        decide_undo(
            m(Stopped, 0),
            &ci("ACTIVE", None),
            None,
            STALE_MARK_SECS - 1,
            0
        ),
        Undo::Wait
    );
    assert_eq!(
        decide_undo(m(Interruption, 0), &ci("ACTIVE", None), None, 99_999, 0),
        Undo::Wait
    );
}

#[test]
fn a_launch_claims_an_unmarked_drain_of_an_empty_returning_instance() {
    assert_eq!(launch_mark(&ci("ACTIVE", None)), None);
    assert_eq!(
        launch_mark(&ci("DRAINING", Some(m(Maintenance, 5)))),
        Some(m(Maintenance, 5))
    );
    assert_eq!(launch_mark(&ci("DRAINING", None)), Some(m(WarmPool, 0)));
    let busy = ContainerInstance {
        running_tasks_count: 1,
        ..ci("DRAINING", None)
    };
    assert_eq!(launch_mark(&busy), None);
}

#[test]
fn a_plain_instances_drain_is_undone_when_it_runs_after_its_reason() {
    let m = |reason, at| DrainMark { reason, at };
    // EC2's `stopping` dates the mark: any later `running` is a start.
    assert!(!plain_undo_due(m(DrainReason::Stopped, 1_000), 900));
    assert!(!plain_undo_due(m(DrainReason::Stopped, 1_000), 1_000));
    assert!(plain_undo_due(m(DrainReason::Stopped, 1_000), 1_001));
    // The Spot warning dates it: the stop is two minutes later at the earliest.
    for stop in [DrainReason::SpotStop, DrainReason::SpotHibernate] {
        assert!(!plain_undo_due(m(stop, 1_000), 900));
        assert!(!plain_undo_due(
            m(stop, 1_000),
            1_000 + SPOT_NOTICE_SECS - 1
        ));
        assert!(plain_undo_due(m(stop, 1_000), 1_000 + SPOT_NOTICE_SECS));
    }
    // Maintenance: its mark is the window's end.
    assert!(!plain_undo_due(m(DrainReason::Maintenance, 5_000), 4_999));
    assert!(plain_undo_due(m(DrainReason::Maintenance, 5_000), 5_000));
    // No event ends these through a start.
    for r in [
        DrainReason::Rebalance,
        DrainReason::WarmPool,
        DrainReason::Interruption,
    ] {
        assert!(!plain_undo_due(m(r, 0), 1_000_000), "{r:?}");
    }
}

#[test]
fn the_sweep_puts_a_plain_instance_back_by_time_only_when_no_event_will() {
    let m = |reason, at| DrainMark { reason, at };
    // A rebalance drain: no event ends it; its delay does (a warning's mark replaces it).
    assert!(!plain_put_back_overdue(
        m(DrainReason::Rebalance, 1_000),
        1_599,
        600
    ));
    assert!(plain_put_back_overdue(
        m(DrainReason::Rebalance, 1_000),
        1_600,
        600
    ));
    // A stop: its `running` is waited for, then the backstop registers it (harmless if it is
    // still stopped: ELB keeps it `unused`).
    let stopped = m(DrainReason::Stopped, 1_000);
    assert!(!plain_put_back_overdue(
        stopped,
        1_000 + PLAIN_BACKSTOP_SECS - 1,
        600
    ));
    assert!(plain_put_back_overdue(
        stopped,
        1_000 + PLAIN_BACKSTOP_SECS,
        600
    ));
    let spot = m(DrainReason::SpotStop, 1_000);
    assert!(!plain_put_back_overdue(
        spot,
        1_000 + SPOT_NOTICE_SECS + PLAIN_BACKSTOP_SECS - 1,
        600
    ));
    assert!(plain_put_back_overdue(
        spot,
        1_000 + SPOT_NOTICE_SECS + PLAIN_BACKSTOP_SECS,
        600
    ));
    // Maintenance: dated by the window's end.
    let window = m(DrainReason::Maintenance, 5_000);
    assert!(!plain_put_back_overdue(
        window,
        5_000 + PLAIN_BACKSTOP_SECS - 1,
        600
    ));
    assert!(plain_put_back_overdue(
        window,
        5_000 + PLAIN_BACKSTOP_SECS,
        600
    ));
    // Never: an interruption's instance is gone; a warm pool's return is Auto Scaling's.
    for r in [DrainReason::Interruption, DrainReason::WarmPool] {
        assert!(!plain_put_back_overdue(m(r, 0), 10_000_000, 600), "{r:?}");
    }
}
