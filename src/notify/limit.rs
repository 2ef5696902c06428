//! Deduplication and rate limiting, on explicit instants so they are testable without
//! waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Identical notices within `window` of the first are sent once.
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    seen: HashMap<u64, Instant>,
}

impl Dedup {
    /// A deduplicator over `window`.
    pub fn new(window: Duration) -> Dedup {
        Dedup {
            window,
            seen: HashMap::new(),
        }
    }

    /// Whether a notice with `key` is new at `now` (and remember it if so).
    pub fn admit(&mut self, key: u64, now: Instant) -> bool {
        let window = self.window;
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) < window);
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now);
        true
    }
}

/// A token bucket: `burst` notices at once, then one every `every`.
#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    every: Duration,
    tokens: f64,
    at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, every: Duration) -> TokenBucket {
        TokenBucket {
            burst: f64::from(burst.max(1)),
            every,
            tokens: f64::from(burst.max(1)),
            at: None,
        }
    }

    /// Take a token at `now`; `false` when there is none (the notice is dropped).
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64()
                / self.every.as_secs_f64().max(f64::EPSILON);
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_admits_once_per_window() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(60));
        assert!(d.admit(1, t0));
        assert!(!d.admit(1, t0 + Duration::from_secs(59)));
        assert!(d.admit(2, t0 + Duration::from_secs(59)));
        assert!(d.admit(1, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_secs(10));
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0 + Duration::from_secs(5)));
        // 5 + 5 seconds since the last take: one token back.
        assert!(b.take(t0 + Duration::from_secs(10)));
        assert!(!b.take(t0 + Duration::from_secs(11)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }
}
