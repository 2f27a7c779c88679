//! Time: one clock trait (so tests can move time) and the one timestamp format Flowline writes:
//! RFC 3339 in UTC with a `Z`, to the millisecond.
//!
//! Two kinds of time, kept apart: the [`Clock`] is the calendar the domain lives by (when a
//! callback is due, when a lease or a page token runs out, when the in-process scheduler fires);
//! durations of work in progress (a webhook attempt's timeout, the pause between attempts, a
//! request's deadline) are measured with tokio's monotonic time.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Returns once this clock reads `at` or later (at once if it already does).
    async fn sleep_until(&self, at: Timestamp);
}

pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, at: Timestamp) {
        let wait = at.duration_since(Timestamp::now());
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
    }
}

/// A clock that stands still until a test moves it; whoever sleeps on it wakes when it is moved
/// past their time.
pub struct ManualClock(watch::Sender<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(watch::Sender::new(at))
    }

    pub fn advance(&self, by: SignedDuration) {
        self.0
            .send_modify(|now| *now = now.checked_add(by).expect("clock in range"));
    }

    /// Moves the clock to `at` (never backwards).
    pub fn advance_to(&self, at: Timestamp) {
        self.0.send_modify(|now| *now = (*now).max(at));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.borrow()
    }

    async fn sleep_until(&self, at: Timestamp) {
        let mut moved = self.0.subscribe();
        // The sender lives as long as the clock, which outlives whoever sleeps on it.
        let _ = moved.wait_for(|now| *now >= at).await;
    }
}

/// `2026-11-21T14:15:22.123Z`.
pub fn format_timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Accepts any RFC 3339 timestamp (any offset); Flowline then keeps it in UTC.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    // jiff also reads RFC 9557 suffixes like `[America/New_York]`; the API takes RFC 3339 only.
    if text.contains('[') {
        return None;
    }
    let at: Timestamp = text.parse().ok()?;
    // Keep millisecond precision, the precision Flowline stores and orders by.
    Timestamp::from_millisecond(at.as_millisecond()).ok()
}

/// Serde helpers for timestamps stored and answered as RFC 3339 strings.
pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_timestamp(*at))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_timestamp(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text}")))
    }

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(at: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => super::super::parse_timestamp(&text)
                    .map(Some)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text}"))
                    }),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_z_to_the_millisecond() {
        let at = parse_timestamp("2026-11-21T15:15:22.1234+01:00").unwrap();
        assert_eq!(format_timestamp(at), "2026-11-21T14:15:22.123Z");
    }

    #[tokio::test]
    async fn a_manual_clock_wakes_its_sleepers_when_moved_past_their_time() {
        let start: Timestamp = "2026-11-21T14:00:00Z".parse().unwrap();
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(start + SignedDuration::from_secs(60))
                    .await
            })
        };
        clock.advance(SignedDuration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "not yet its time");
        clock.advance(SignedDuration::from_secs(1));
        sleeper.await.expect("wakes at its time");
        // Already past: no wait at all.
        clock.sleep_until(start).await;
        clock.advance_to(start);
        assert_eq!(
            clock.now(),
            start + SignedDuration::from_secs(60),
            "never backwards"
        );
    }

    #[test]
    fn non_rfc3339_text_is_refused() {
        for text in ["2026-11-21", "yesterday", "2026-11-21T14:15:22Z[UTC]", ""] {
            assert!(parse_timestamp(text).is_none(), "{text}");
        }
    }
}
