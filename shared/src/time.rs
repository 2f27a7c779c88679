//! Time: one clock trait (so tests can move time) and the one timestamp format Flowline writes:
//! RFC 3339 in UTC with a `Z`, to the millisecond.

use jiff::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock tests set by hand.
pub struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(std::sync::Mutex::new(at))
    }
    pub fn advance(&self, by: jiff::SignedDuration) {
        let mut now = self.0.lock().expect("clock lock");
        *now = now.checked_add(by).expect("clock in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
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

    #[test]
    fn non_rfc3339_text_is_refused() {
        for text in ["2026-11-21", "yesterday", "2026-11-21T14:15:22Z[UTC]", ""] {
            assert!(parse_timestamp(text).is_none(), "{text}");
        }
    }
}
