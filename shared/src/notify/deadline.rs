//! The invocation's deadline, on tokio's clock.

use std::time::Duration;
use tokio::time::Instant;

/// When the invocation must be finished; retries and waits never go past it. On tokio's clock,
/// so the simulator's paused time moves it too.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// Lambda's deadline (milliseconds since the epoch), less a margin to report back in time.
    /// Lambda never hands over an invocation whose deadline has passed; local emulators may
    /// (`cargo lambda watch` sends the timeout, `600000`, instead of a time): then
    /// [`Deadline::FALLBACK`] is assumed.
    pub fn from_epoch_ms(deadline_ms: u64) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        if deadline_ms <= now_ms {
            tracing::debug!(
                deadline_ms,
                now_ms,
                "runtime deadline is not in the future; assuming the fallback budget"
            );
            return Self::after(Self::FALLBACK);
        }
        let left = Duration::from_millis(deadline_ms - now_ms);
        Self(Instant::now() + left.saturating_sub(Duration::from_millis(500)))
    }

    /// The budget assumed when the runtime's deadline is unusable.
    pub const FALLBACK: Duration = Duration::from_secs(30);

    pub fn after(d: Duration) -> Self {
        Self(Instant::now() + d)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = Deadline::from_epoch_ms(now_ms + 10_000);
        assert!(
            d.remaining() > Duration::from_secs(9) && d.remaining() <= Duration::from_millis(9_500)
        );
        assert!(Deadline::from_epoch_ms(0).remaining() > Duration::from_secs(29));
        assert!(Deadline::from_epoch_ms(now_ms - 5).remaining() > Duration::from_secs(29));
    }
}
