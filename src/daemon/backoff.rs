//! The error policy: a failed resource is retried after a capped, jittered exponential
//! delay, without holding back the others.

use std::time::Duration;

use tokio::time::Instant;

/// Retry state of one failed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures in a row.
    pub attempts: u32,
    /// Not retried before this.
    pub next_at: Instant,
}

impl Backoff {
    /// The state after one more failure at `now`.
    pub fn after_failure(
        prev: Option<Backoff>,
        now: Instant,
        base: Duration,
        max: Duration,
    ) -> Backoff {
        let attempts = prev.map_or(1, |b| b.attempts.saturating_add(1));
        Backoff {
            attempts,
            next_at: now + Self::delay(attempts, base, max),
        }
    }

    /// `base * 2^(attempts-1)`, capped at `max`, with up to 20% taken off at random so that
    /// many failures do not retry in step.
    pub fn delay(attempts: u32, base: Duration, max: Duration) -> Duration {
        let exp = base.saturating_mul(
            1u32.checked_shl(attempts.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX),
        );
        let capped = exp.min(max);
        capped.mul_f64(1.0 - rand::random_range(0.0..0.2))
    }

    /// Whether the resource may be tried at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        now >= self.next_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        let d1 = Backoff::delay(1, base, max);
        let d3 = Backoff::delay(3, base, max);
        let d30 = Backoff::delay(30, base, max);
        assert!(d1 <= base && d1 >= base.mul_f64(0.8));
        assert!(d3 <= base * 4 && d3 >= (base * 4).mul_f64(0.8));
        assert!(d30 <= max && d30 >= max.mul_f64(0.8));
        let now = Instant::now();
        let b = Backoff::after_failure(None, now, base, max);
        assert_eq!(b.attempts, 1);
        assert!(!b.ready(now));
        assert_eq!(Backoff::after_failure(Some(b), now, base, max).attempts, 2);
    }
}
