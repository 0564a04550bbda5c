//! Why an instance is out of service, and who may end it: one model for every function.
//!
//! A drain fleetguard expects to undo carries a mark (the container-instance attribute
//! [`DRAIN_MARK_ATTRIBUTE`]): the strongest reason it was drained for, and a time. Reasons have
//! a precedence; a weaker one never replaces a stronger one, so the mark always names the
//! reason that ends last. The drain is undone only when that reason is over, which is then true
//! of every weaker one too. The table of transitions is in `docs/out-of-service.md`. Pure.

use crate::ports::ContainerInstance;

/// The container-instance attribute where fleetguard notes a drain it will undo: ECS holds the
/// fact, so no table is needed and the event of the instance's return carries it.
pub const DRAIN_MARK_ATTRIBUTE: &str = "fleetguard.drained-for";

/// A Spot stop or hibernation comes two minutes after its warning: an agent still connected
/// this long after the drain means the instance is running again (or was never stopped).
pub const SPOT_RETURN_SECS: i64 = 300;
/// Our mark on a container instance that is ACTIVE this long after the drain it notes is
/// stale (its drain was undone by someone, or never landed): removed. Younger, it may be a
/// drain whose call is still on its way.
pub const STALE_MARK_SECS: i64 = 600;

/// Why an instance was drained. Declared weakest first: `Ord` is the precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DrainReason {
    /// A rebalance recommendation (`REBALANCE_ACTION=drain`): over when its hold passes with no
    /// interruption warning.
    Rebalance,
    /// Scale-in back to a warm pool: over when the group puts it in service again.
    WarmPool,
    /// An instance stopping outside any hook (`instance-maintenance`): over when it runs again.
    Stopped,
    /// A Spot interruption that stops the instance: over when it is started again.
    SpotStop,
    /// A Spot interruption that hibernates the instance: over when it resumes.
    SpotHibernate,
    /// AWS scheduled maintenance (a reboot, a stop or a retirement). The mark's time is the
    /// window's end: over once the window has passed and the instance runs (or when its Health
    /// event closes, through `instance-maintenance`).
    Maintenance,
    /// A Spot interruption that terminates the instance: never over. Written only over a mark
    /// of ours (an unmarked drain is never undone anyway), so no weaker reason can undo it.
    Interruption,
}

impl DrainReason {
    pub const ALL: [Self; 7] = [
        Self::Rebalance,
        Self::WarmPool,
        Self::Stopped,
        Self::SpotStop,
        Self::SpotHibernate,
        Self::Maintenance,
        Self::Interruption,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarmPool => "warm-pool",
            Self::SpotStop => "spot-stop",
            Self::SpotHibernate => "spot-hibernate",
            Self::Rebalance => "rebalance",
            Self::Stopped => "stopped",
            Self::Maintenance => "maintenance",
            Self::Interruption => "interruption",
        }
    }

    /// The stop kinds share a rank: the later of two is kept.
    fn rank(self) -> u8 {
        match self {
            Self::Rebalance => 0,
            Self::WarmPool => 1,
            Self::Stopped | Self::SpotStop | Self::SpotHibernate => 2,
            Self::Maintenance => 3,
            Self::Interruption => 4,
        }
    }

    /// The instance's tasks all end with this reason (a stop, a reboot, a hibernation, the warm
    /// pool): back from it, the instance is empty. A rebalance drain is undone mid-drain.
    fn empties(self) -> bool {
        self != Self::Rebalance
    }
}

/// A drain fleetguard will undo: why, and when (epoch seconds). Written as the attribute value
/// `<reason>@<epoch seconds>` (characters ECS allows in attribute values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainMark {
    pub reason: DrainReason,
    pub at: i64,
}

impl DrainMark {
    pub fn value(&self) -> String {
        format!("{}@{}", self.reason.as_str(), self.at)
    }

    /// The attribute value back; `None` for anything else (another tool's value is not ours).
    pub fn parse(value: &str) -> Option<Self> {
        let (reason, at) = value.trim().split_once('@')?;
        let reason = DrainReason::ALL
            .into_iter()
            .find(|r| r.as_str() == reason)?;
        Some(Self {
            reason,
            at: at.parse().ok()?,
        })
    }

    /// Whether `self`, arriving over `old`, replaces it: a stronger reason does; of one rank, the
    /// later time does (a maintenance window moved later, a second stop). A weaker reason, or an
    /// earlier time, never does: the mark keeps the reason that ends last.
    pub fn supersedes(&self, old: &DrainMark) -> bool {
        match self.reason.rank().cmp(&old.reason.rank()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.at > old.at,
        }
    }
}

/// What a drain call has to do for a container instance: set DRAINING (only from ACTIVE), and
/// which mark to write.
/// - A DRAINING instance without our mark was drained by someone else: it is left as it is,
///   and never marked (its undo is not ours), unless it is scaling in to a warm pool under our
///   hook (then the return is ours: it must come back ACTIVE).
/// - Over a mark of ours, `mark` is written only when it supersedes it.
/// - A final reason ([`DrainReason::Interruption`]) is written only over a mark of ours: an
///   unmarked drain is never undone, and the call is saved inside the two minutes.
pub fn drain_needs(ci: &ContainerInstance, mark: Option<DrainMark>) -> (bool, Option<DrainMark>) {
    let write = match (ci.drain_mark, mark) {
        (Some(old), Some(new)) => new.supersedes(&old).then_some(new),
        (None, Some(new)) if new.reason == DrainReason::Interruption => None,
        (None, new) if ci.status != "DRAINING" => new,
        // A scale-in to the warm pool under our hook claims the drain, whoever made it: the
        // instance comes back through our launch hook, which needs it ACTIVE. (An invocation
        // that died between the drain and its mark's second chance left it unmarked; found
        // by the fleet simulator, 1 seed in 100,000.)
        (None, Some(new)) if new.reason == DrainReason::WarmPool => Some(new),
        _ => None,
    };
    (ci.status != "DRAINING", write)
}

/// The mark to undo for an instance launching into service under our launch hook: its own, or,
/// DRAINING, back (agent connected) and empty without one, the warm pool's: it can only be
/// coming back from the warm pool, drained on the way there by a drain whose mark could not be
/// written, and our launch hook needs it ACTIVE (else the launch is abandoned).
pub fn launch_mark(ci: &ContainerInstance) -> Option<DrainMark> {
    ci.drain_mark.or_else(|| {
        (ci.status == "DRAINING"
            && ci.agent_connected
            && ci.running_tasks_count == 0
            && ci.pending_tasks_count == 0)
            .then_some(DrainMark {
                reason: DrainReason::WarmPool,
                at: 0,
            })
    })
}

/// A Spot interruption comes two minutes after its warning at the earliest.
pub const SPOT_NOTICE_SECS: i64 = 120;

/// Whether a plain EC2 instance's drain (its deregistration; no container instance) is undone
/// now that EC2 reports it `running` (at `event_time`): a stop's once it runs after the stop
/// (the mark is dated by EC2's `stopping`, or by the Spot warning, two minutes before the
/// stop: a `running` from before that proves nothing), maintenance's once its window is over
/// too. A rebalance drain no event ends, an interruption's never ends, and a warm pool's return
/// is Auto Scaling's to register.
pub fn plain_undo_due(mark: DrainMark, event_time: i64) -> bool {
    match mark.reason {
        DrainReason::Stopped => event_time > mark.at,
        DrainReason::SpotStop | DrainReason::SpotHibernate => {
            event_time >= mark.at + SPOT_NOTICE_SECS
        }
        DrainReason::Maintenance => event_time >= mark.at,
        DrainReason::Rebalance | DrainReason::WarmPool | DrainReason::Interruption => false,
    }
}

/// How long after a plain instance's stop or maintenance window its `running` event is waited
/// for before the minute sweep registers it again anyway (the event may be lost). Registering a
/// stopped instance is harmless: ELB marks it `unused` (`Target.InvalidState`) and routes to it
/// only once it runs and passes its health checks.
pub const PLAIN_BACKSTOP_SECS: i64 = 1800;

/// Whether the minute sweep registers a plain EC2 instance again by time alone (no event): a
/// rebalance drain once `REBALANCE_UNDO_SECONDS` passed without a stronger reason (a warning
/// replaces its mark), a stop or maintenance [`PLAIN_BACKSTOP_SECS`] after it was due (its
/// `running` was lost). An interruption's never; a warm pool's is Auto Scaling's.
pub fn plain_put_back_overdue(mark: DrainMark, now: i64, rebalance_undo_secs: i64) -> bool {
    let due = match mark.reason {
        DrainReason::Rebalance => return now >= mark.at + rebalance_undo_secs,
        DrainReason::Stopped => mark.at,
        DrainReason::SpotStop | DrainReason::SpotHibernate => mark.at + SPOT_NOTICE_SECS,
        DrainReason::Maintenance => mark.at,
        DrainReason::WarmPool | DrainReason::Interruption => return false,
    };
    now >= due + PLAIN_BACKSTOP_SECS
}

/// An Auto Scaling lifecycle state in service or on its way into it (not scaling in, in the
/// warm pool, detaching or in standby).
pub fn in_service_state(s: &str) -> bool {
    s == "InService" || s == "Pending" || s.starts_with("Pending:")
}

/// What to do about a drain of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Set ACTIVE and remove the mark (only the mark, when already ACTIVE).
    Activate,
    Wait,
}

/// Whether the undo can be due by time alone, before anything is looked up: a Spot stop's
/// instance cannot be back before [`SPOT_RETURN_SECS`], a rebalance drain is held for the
/// configured delay, maintenance until its window's end, an interruption forever. Cheap, so
/// most wake-ups of a draining instance cost no call.
pub fn undo_may_be_due(mark: DrainMark, now: i64, rebalance_undo_secs: i64) -> bool {
    let age = now - mark.at;
    match mark.reason {
        DrainReason::WarmPool => true,
        DrainReason::SpotStop | DrainReason::SpotHibernate | DrainReason::Stopped => {
            age >= SPOT_RETURN_SECS
        }
        // Marked with the window's end: back once the window is over.
        DrainReason::Maintenance => age >= 0,
        DrainReason::Rebalance => age >= rebalance_undo_secs,
        DrainReason::Interruption => false,
    }
}

/// Whether a drain of ours is undone now: its reason is over, and the instance is back (agent
/// connected), empty when its reason ends every task, and in service or on its way into it.
/// `group_state`: its Auto Scaling lifecycle state, `None` when in no group. An instance on its
/// way out (terminating, detaching, in or back to the warm pool, in standby) keeps its drain.
pub fn decide_undo(
    mark: DrainMark,
    ci: &ContainerInstance,
    group_state: Option<&str>,
    now: i64,
    rebalance_undo_secs: i64,
) -> Undo {
    if ci.status == "ACTIVE" {
        // Someone set it ACTIVE (or our undo stopped half-way): only the stale mark goes.
        return if now - mark.at >= STALE_MARK_SECS && mark.reason != DrainReason::Interruption {
            Undo::Activate
        } else {
            Undo::Wait
        };
    }
    if ci.status != "DRAINING" || !ci.agent_connected {
        // Stopped, hibernated, in the warm pool, or gone.
        return Undo::Wait;
    }
    // Tasks still on it: it never went (a stop, reboot or scale-in empties an instance).
    let busy = ci.running_tasks_count > 0 || ci.pending_tasks_count > 0;
    if busy && mark.reason.empties() {
        return Undo::Wait;
    }
    let in_service = match group_state {
        None => mark.reason != DrainReason::WarmPool,
        Some(s) => in_service_state(s),
    };
    if in_service && undo_may_be_due(mark, now, rebalance_undo_secs) {
        Undo::Activate
    } else {
        Undo::Wait
    }
}

#[cfg(test)]
#[path = "reasons_tests.rs"]
mod tests;
