//! Backoff: how long to wait before the next attempt after failures, with
//! jitter, for everything exo retries (feed reconnects and renewals).
//!
//! The invariant: the n-th wait after a success lies in `[d/2, d]` with
//! `d = min(initial * 2^(n-1), max)`, so waits grow exponentially, never
//! exceed `max`, and clients that failed together do not retry in lockstep
//! ("equal jitter").

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with equal jitter. See the module docs.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `initial` (halved at most by jitter), doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The wait before the next attempt; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.failures = self.failures.saturating_add(1);
        let d = self.initial.saturating_mul(factor).min(self.max);
        let half = d / 2;
        half + half.mul_f64(unit_random())
    }

    /// Failures since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// An attempt succeeded: the next failure waits about `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random number in `[0, 1)`, from the standard library's randomly keyed
/// hasher (no random-number crate needed for jitter).
fn unit_random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_jitter_and_stop_at_the_maximum() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        for ceiling in [100, 200, 400, 800, 1000, 1000] {
            let d = b.next_delay();
            assert!(
                d >= ms(ceiling / 2) && d <= ms(ceiling),
                "{d:?} for {ceiling}"
            );
        }
        assert_eq!(b.failures(), 6);
        b.reset();
        assert!(b.next_delay() <= ms(100));
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            seen.insert(Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay());
        }
        assert!(seen.len() > 10, "{} distinct waits of 50", seen.len());
    }

    #[test]
    fn a_huge_number_of_failures_does_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }
}
