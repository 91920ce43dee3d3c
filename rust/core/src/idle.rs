//! Idle strategy: what a driver that polls for work does when a poll found
//! none — spin (poll again at once), yield its core (`sched_yield`, then poll
//! again) or park (sleep until another thread wakes it).
//!
//! Waking a parked thread costs 20-60 us on a VM (p99 over 100 us), which is
//! most of the one-way latency from a feed to a delegate; polling costs a busy
//! core. [`IdleStrategy`] adapts between the two, after Aeron's
//! `BackoffIdleStrategy` (spin, then yield, then park): after work it keeps
//! spinning for a window sized to how far apart work has been arriving —
//! about twice the recent gap, capped by `max_spin` — so that while data flows
//! at a steady rate the next item finds the driver awake, and when it stops,
//! or comes further apart than `max_spin`, the driver spins only
//! [`MIN_SPIN`], yields [`YIELDS`] times and parks. Idle, it burns nothing.
//!
//! The invariant: the driver never spins for longer than `max_spin` after the
//! last work it saw; `max_spin == 0` never spins nor yields (park at once).

use std::time::{Duration, Instant};

/// What to do after a poll that found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Poll again at once.
    Spin,
    /// Give the core to another runnable thread (`sched_yield`), then poll again.
    Yield,
    /// Stop polling: sleep until woken.
    Park,
}

/// The shortest spin after work (unless `max_spin` is shorter): catches the
/// trade that follows a quote, the next frames of a burst.
pub const MIN_SPIN: Duration = Duration::from_micros(50);
/// Polls that yield the core between the end of the spin and the park.
pub const YIELDS: u32 = 10;
/// Weight of the newest gap in the running estimate of the gap between two
/// items of work (1/8: a steady feed settles within ~20 items).
const GAP_WEIGHT: u32 = 8;
/// The spin window is this many times the estimated gap (so that a feed's
/// jitter rarely lets the driver park between two items).
const WINDOW_GAPS: u32 = 2;

/// Spin, then yield, then park; see the module docs.
#[derive(Debug, Clone)]
pub struct IdleStrategy {
    max_spin: Duration,
    /// When the last work was seen.
    last_work: Option<Instant>,
    /// Running estimate of the gap between two items of work.
    gap: Option<Duration>,
    /// How long to spin after `last_work`.
    window: Duration,
    yields: u32,
}

impl IdleStrategy {
    /// A strategy that spins for at most `max_spin` after work (zero: never).
    pub fn new(max_spin: Duration) -> Self {
        IdleStrategy {
            max_spin,
            last_work: None,
            gap: None,
            window: Duration::ZERO,
            yields: 0,
        }
    }

    /// The cap on spinning after work.
    pub fn max_spin(&self) -> Duration {
        self.max_spin
    }

    /// True when this strategy ever polls (`max_spin` > 0).
    pub fn polls(&self) -> bool {
        !self.max_spin.is_zero()
    }

    /// How long the driver will spin after the last work (for tests and stats).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Work was found at `now`: the gap since the last work updates the
    /// estimate, and the spin (and the yields) start again.
    pub fn work(&mut self, now: Instant) {
        if let Some(last) = self.last_work {
            let gap = now.saturating_duration_since(last);
            self.gap = Some(match self.gap {
                // est += (gap - est) / GAP_WEIGHT, without going negative.
                Some(est) if gap >= est => est + (gap - est) / GAP_WEIGHT,
                Some(est) => est - (est - gap) / GAP_WEIGHT,
                None => gap,
            });
        }
        self.last_work = Some(now);
        self.yields = 0;
        self.window = match self.gap {
            // Spinning up to the next item pays only when it comes within
            // the cap; further apart, a short spin catches bursts.
            Some(gap) if gap <= self.max_spin => (gap * WINDOW_GAPS).clamp(MIN_SPIN, self.max_spin),
            _ => MIN_SPIN.min(self.max_spin),
        };
    }

    /// A poll at `now` found nothing: spin, yield or park.
    pub fn idle(&mut self, now: Instant) -> Idle {
        if !self.polls() {
            return Idle::Park;
        }
        let Some(last) = self.last_work else {
            return Idle::Park;
        };
        if now.saturating_duration_since(last) < self.window {
            Idle::Spin
        } else if self.yields < YIELDS {
            self.yields += 1;
            Idle::Yield
        } else {
            Idle::Park
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    /// Drives `s` with work every `gap`, `n` times, from `t`; returns the time of the last.
    fn steady(s: &mut IdleStrategy, t: Instant, gap: Duration, n: u32) -> Instant {
        let mut now = t;
        for _ in 0..n {
            s.work(now);
            now += gap;
        }
        now - gap
    }

    #[test]
    fn zero_max_spin_parks_at_once_even_after_work() {
        let mut s = IdleStrategy::new(Duration::ZERO);
        let t = Instant::now();
        s.work(t);
        assert!(!s.polls());
        assert_eq!(s.idle(t), Idle::Park);
    }

    #[test]
    fn never_worked_parks() {
        let mut s = IdleStrategy::new(2 * MS);
        assert_eq!(s.idle(Instant::now()), Idle::Park);
    }

    #[test]
    fn first_work_spins_the_minimum_then_yields_then_parks() {
        let mut s = IdleStrategy::new(2 * MS);
        let t = Instant::now();
        s.work(t);
        assert_eq!(s.window(), MIN_SPIN);
        assert_eq!(s.idle(t + 10 * US), Idle::Spin);
        let after = t + MIN_SPIN;
        for _ in 0..YIELDS {
            assert_eq!(s.idle(after), Idle::Yield);
        }
        assert_eq!(s.idle(after), Idle::Park);
    }

    #[test]
    fn steady_feed_within_the_cap_spins_across_its_gaps() {
        let mut s = IdleStrategy::new(2 * MS);
        let t = Instant::now();
        let last = steady(&mut s, t, MS, 50);
        assert_eq!(s.window(), 2 * MS, "twice a 1 ms gap, capped at 2 ms");
        // The next item is due 1 ms after the last: still spinning then.
        assert_eq!(s.idle(last + MS + 100 * US), Idle::Spin);
    }

    #[test]
    fn window_is_twice_the_gap_below_the_cap() {
        let mut s = IdleStrategy::new(5 * MS);
        steady(&mut s, Instant::now(), 300 * US, 100);
        let w = s.window();
        assert!(w >= 590 * US && w <= 610 * US, "window {w:?}");
    }

    #[test]
    fn feed_slower_than_the_cap_spins_only_the_minimum() {
        let mut s = IdleStrategy::new(2 * MS);
        let t = Instant::now();
        let last = steady(&mut s, t, 10 * MS, 30);
        assert_eq!(s.window(), MIN_SPIN);
        assert_eq!(s.idle(last + 2 * MIN_SPIN), Idle::Yield);
    }

    #[test]
    fn spin_never_exceeds_max_spin_after_the_last_work() {
        let mut s = IdleStrategy::new(MS);
        let t = Instant::now();
        let last = steady(&mut s, t, 900 * US, 50);
        assert_eq!(s.window(), MS);
        assert_eq!(s.idle(last + MS), Idle::Yield);
    }

    #[test]
    fn a_feed_that_stops_parks_after_the_window_and_the_yields() {
        let mut s = IdleStrategy::new(2 * MS);
        let t = Instant::now();
        let last = steady(&mut s, t, 500 * US, 40);
        let later = last + 3 * MS;
        let mut seen = Vec::new();
        for _ in 0..=YIELDS {
            seen.push(s.idle(later));
        }
        assert!(seen[..YIELDS as usize].iter().all(|i| *i == Idle::Yield));
        assert_eq!(seen[YIELDS as usize], Idle::Park);
    }

    #[test]
    fn work_after_parking_starts_spinning_again() {
        let mut s = IdleStrategy::new(2 * MS);
        let t = Instant::now();
        s.work(t);
        let later = t + 10 * MS;
        for _ in 0..=YIELDS {
            s.idle(later);
        }
        assert_eq!(s.idle(later), Idle::Park);
        s.work(later);
        assert_eq!(s.idle(later + US), Idle::Spin);
    }
}
