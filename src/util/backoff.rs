//! Exponential backoff with full jitter, the one formula the outbox, media downloads
//! and forwarding share: attempt `n` (counted from 1) waits a uniform random delay in
//! `[0, min(cap, base * 2^(n-1))]`. The random part is a fraction passed in, so the
//! decisions built on it can be tested with fixed values.

use std::time::Duration;

use rand::Rng;

/// Doublings at most: keeps the shift in range (the cap is reached long before).
const MAX_DOUBLINGS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The longest wait before attempt `attempt` (counted from 1; 0 counts as 1):
    /// `min(cap, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(MAX_DOUBLINGS);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// Full jitter: `fraction` (clamped to `[0, 1]`) of the ceiling.
    pub fn delay(&self, attempt: u32, fraction: f64) -> Duration {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.ceiling(attempt).mul_f64(fraction)
    }

    /// Full jitter with a fresh random fraction.
    pub fn random(&self, attempt: u32) -> Duration {
        self.delay(attempt, jitter())
    }

    /// Equal jitter: half the ceiling, plus `fraction` of the other half. For a
    /// peer that counts failed tries against us (an ACME CA), where a near-zero
    /// wait would only spend its rate limit.
    pub fn at_least_half(&self, attempt: u32, fraction: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling / 2 + self.delay(attempt, fraction) / 2
    }
}

/// A uniform random fraction in `[0, 1]`, for [`Backoff::delay`].
pub fn jitter() -> f64 {
    rand::thread_rng().gen_range(0.0..=1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bounds() {
        let b = Backoff::new(ms(250), ms(10_000));
        // (attempt, fraction, expected delay)
        let rows: &[(u32, f64, Duration)] = &[
            (0, 1.0, ms(250)),
            (1, 0.0, ms(0)),
            (1, 1.0, ms(250)),
            (1, 0.5, ms(125)),
            (2, 1.0, ms(500)),
            (3, 1.0, ms(1000)),
            (6, 1.0, ms(8000)),
            (7, 1.0, ms(10_000)),
            (7, 0.5, ms(5000)),
            (40, 1.0, ms(10_000)),
            (u32::MAX, 1.0, ms(10_000)),
            (u32::MAX, 0.0, ms(0)),
            (3, -1.0, ms(0)),
            (3, 2.0, ms(1000)),
            (3, f64::NAN, ms(0)),
        ];
        for &(n, f, want) in rows {
            assert_eq!(b.delay(n, f), want, "attempt {n}, fraction {f}");
        }
        for (n, f, want) in [(1, 0.0, ms(125)), (1, 1.0, ms(250)), (3, 0.5, ms(750))] {
            assert_eq!(b.at_least_half(n, f), want, "attempt {n}, fraction {f}");
        }
    }

    #[test]
    fn huge_base_saturates_to_the_cap() {
        let b = Backoff::new(Duration::MAX / 2, ms(60_000));
        assert_eq!(b.ceiling(31), ms(60_000));
    }

    #[test]
    fn random_stays_in_bounds() {
        let b = Backoff::new(ms(100), ms(1000));
        for attempt in 1..12 {
            for _ in 0..50 {
                assert!(b.random(attempt) <= b.ceiling(attempt));
            }
        }
    }
}
