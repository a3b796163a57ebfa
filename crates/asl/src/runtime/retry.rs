//! Retry delays: `IntervalSeconds × BackoffRate^attempt`, capped by `MaxDelaySeconds`, with
//! optional full jitter (a uniform draw between 0 and the computed delay).

use rand::Rng;

use crate::definition::{Jitter, Retrier};

/// Delay in (unscaled) seconds before retry number `attempt` (0-based) of this retrier.
pub(crate) fn delay_seconds(retrier: &Retrier, attempt: u32, rng: &mut impl Rng) -> f64 {
    let base = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(attempt as i32);
    let capped = match retrier.max_delay_seconds {
        Some(max) => base.min(max as f64),
        None => base,
    };
    match retrier.jitter {
        Jitter::None => capped,
        Jitter::Full => rng.random_range(0.0..=capped),
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn retrier(interval: u64, backoff: f64, max_delay: Option<u64>, jitter: Jitter) -> Retrier {
        Retrier {
            error_equals: vec!["States.ALL".into()],
            interval_seconds: interval,
            max_attempts: 10,
            backoff_rate: backoff,
            max_delay_seconds: max_delay,
            jitter,
        }
    }

    #[test]
    fn backoff_grows_geometrically() {
        let r = retrier(3, 2.0, None, Jitter::None);
        let mut rng = StdRng::seed_from_u64(1);
        let delays: Vec<f64> = (0..4).map(|a| delay_seconds(&r, a, &mut rng)).collect();
        assert_eq!(delays, [3.0, 6.0, 12.0, 24.0]);
    }

    #[test]
    fn max_delay_caps_the_backoff() {
        let r = retrier(1, 10.0, Some(50), Jitter::None);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(delay_seconds(&r, 1, &mut rng), 10.0);
        assert_eq!(delay_seconds(&r, 2, &mut rng), 50.0);
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_delay() {
        let r = retrier(4, 2.0, None, Jitter::Full);
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<f64> = (0..100).map(|_| delay_seconds(&r, 2, &mut rng)).collect();
        assert!(draws.iter().all(|d| (0.0..=16.0).contains(d)));
        assert!(draws.iter().any(|d| *d < 8.0) && draws.iter().any(|d| *d > 8.0));
    }
}
