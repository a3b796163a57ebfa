//! Time as the engine sees it: wall-clock timestamps that advance with tokio's clock (so paused
//! test time moves them too), and the `time_scale` that shrinks or stretches every timer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock time anchored at engine creation and advanced by tokio's monotonic clock.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    wall_base: DateTime<Utc>,
    instant_base: Instant,
    time_scale: f64,
}

impl Clock {
    pub(crate) fn new(time_scale: f64) -> Self {
        Self {
            wall_base: Utc::now(),
            instant_base: Instant::now(),
            time_scale: if time_scale.is_finite() && time_scale >= 0.0 {
                time_scale
            } else {
                1.0
            },
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.instant_base);
        self.wall_base + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// A definition's duration in seconds, scaled for this engine. Durations too long to
    /// represent (a huge `SecondsPath` value, a retry backoff grown to infinity) mean "never".
    pub(crate) fn scaled(&self, seconds: f64) -> Duration {
        Duration::try_from_secs_f64((seconds * self.time_scale).max(0.0)).unwrap_or(Duration::MAX)
    }

    /// The wall-clock deadline `seconds` (scaled) after `from`; deadlines are kept as wall-clock
    /// times so that they survive a restart of the process.
    pub(crate) fn deadline(&self, from: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
        chrono::Duration::from_std(self.scaled(seconds))
            .ok()
            .and_then(|delta| from.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// How long until a wall-clock deadline; zero once it has passed.
    pub(crate) fn until(&self, deadline: DateTime<Utc>) -> Duration {
        (deadline - self.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// The tokio instant of a wall-clock deadline; one too far to represent is about a century
    /// away, which no execution outlives.
    pub(crate) fn instant_of(&self, deadline: DateTime<Utc>) -> Instant {
        self.instant_in(self.until(deadline))
    }

    /// The tokio instant `delay` from now, saturating like [`Clock::instant_of`].
    pub(crate) fn instant_in(&self, delay: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
    }
}

/// Formats a timestamp the way Step Functions shows them: RFC 3339, milliseconds, `Z`.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_too_long_to_represent_saturate_instead_of_panicking() {
        let clock = Clock::new(1.0);
        assert_eq!(clock.scaled(f64::INFINITY), Duration::MAX);
        assert_eq!(clock.scaled(1.9e19), Duration::MAX);
        assert_eq!(clock.scaled(f64::NAN), Duration::ZERO);
        let never = clock.deadline(clock.now(), 1e300);
        assert_eq!(never, DateTime::<Utc>::MAX_UTC);
        assert!(clock.instant_of(never) > Instant::now() + Duration::from_secs(86_400 * 365));
    }

    #[tokio::test(start_paused = true)]
    async fn now_advances_with_tokio_time() {
        let clock = Clock::new(1.0);
        let before = clock.now();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!((clock.now() - before).num_seconds(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_are_scaled_and_count_down_with_time() {
        let clock = Clock::new(0.5);
        let deadline = clock.deadline(clock.now(), 10.0);
        assert_eq!(clock.until(deadline), Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(clock.until(deadline), Duration::ZERO);
    }

    #[test]
    fn scaled_multiplies_durations() {
        let clock = Clock::new(0.01);
        assert_eq!(clock.scaled(100.0), Duration::from_secs(1));
    }

    #[test]
    fn nonsense_scale_falls_back_to_real_time() {
        assert_eq!(Clock::new(f64::NAN).scaled(2.0), Duration::from_secs(2));
        assert_eq!(Clock::new(-1.0).scaled(2.0), Duration::from_secs(2));
    }
}
