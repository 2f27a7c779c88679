//! Callback policies (SPEC §7) as values and rules: the calling window and when it next opens,
//! call outcomes, the retry policy and the per-number dedupe. Pure: no store and no clock; the
//! caller passes the instant.

use jiff::civil::{Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::error::FieldProblem;
use crate::fields::{Field, FieldReader, whole_number};

/// The days of a calling window as the API spells them, Monday first.
pub const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// IANA names are at most 30-odd characters; anything longer is not one.
const MAX_TIME_ZONE_CHARS: usize = 64;

/// How far ahead `next_opening` looks: a window opens at least once a week, and two weeks
/// cover a day whose whole window falls into a daylight-saving gap.
const SEARCH_DAYS: i32 = 15;

/// The zone called `name` (ASCII case ignored) in the tz database compiled into the binary.
fn bundled_zone(name: &str) -> Option<TimeZone> {
    // Always the bundled copy, never the host's /usr/share/zoneinfo: the Lambda image has none,
    // and an answer must not depend on the machine that computes it.
    TimeZoneDatabase::bundled()
        .get(name)
        .ok()
        .filter(|tz| !tz.is_unknown())
}

/// Whether `name` is an IANA time zone in the bundled database (ASCII case ignored).
pub fn is_time_zone(name: &str) -> bool {
    bundled_zone(name).is_some()
}

/// The database's spelling of the zone `name` ("america/new_york" → "America/New_York").
pub fn canonical_time_zone(name: &str) -> Option<String> {
    bundled_zone(name).and_then(|tz| tz.iana_name().map(str::to_owned))
}

/// "HH:MM", 24-hour, 00:00 to 23:59.
fn parse_clock(text: &str) -> Option<Time> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    let (hours, minutes): (i8, i8) = (hours.parse().ok()?, minutes.parse().ok()?);
    Time::new(hours, minutes, 0, 0).ok()
}

fn clock_text(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

fn day_index(day: Weekday) -> usize {
    usize::from(day.to_monday_zero_offset().unsigned_abs())
}

/// SPEC §7 calling window, serialized exactly as the API shows it:
/// `{"time_zone": "America/New_York", "days": ["mon",…], "start": "09:00", "end": "17:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallingWindow {
    pub time_zone: String,
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

impl CallingWindow {
    /// Reads the API value of field `field` (e.g. "calling_window"); every problem names its
    /// path ("calling_window.start", "calling_window.days[2]"). `days` default to all seven
    /// (also when `null`); they come back deduplicated, Monday first. `time_zone` comes back
    /// spelled as the database spells it. `null` for the whole window is the caller's to handle.
    pub fn read(field: &str, value: Value) -> Result<Self, Vec<FieldProblem>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldProblem::new(
                field,
                "must be an object like {\"time_zone\": \"America/New_York\", \"start\": \"09:00\", \"end\": \"17:00\"}",
            )]);
        };
        let mut fields = FieldReader::nested(field, map);
        let time_zone = fields
            .required_string("time_zone", 1, MAX_TIME_ZONE_CHARS)
            .and_then(|name| {
                let canonical = canonical_time_zone(&name);
                if canonical.is_none() {
                    fields.problem(
                        "time_zone",
                        format!("unknown time zone {name:?}: must be an IANA name such as America/New_York"),
                    );
                }
                canonical
            });
        let days = read_days(&mut fields);
        let start = read_clock(&mut fields, "start");
        let end = read_clock(&mut fields, "end");
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            fields.problem("end", "must be later than start");
        }
        let problems = fields.into_problems();
        match (time_zone, days, start, end) {
            (Some(time_zone), Some(days), Some(start), Some(end)) if problems.is_empty() => {
                Ok(Self {
                    time_zone,
                    days,
                    start: clock_text(start),
                    end: clock_text(end),
                })
            }
            _ => Err(problems),
        }
    }

    /// The earliest instant >= `at` at which the window is open (see [`Self::is_open`]), in
    /// `zone` if given and known (a callback's own `time_zone`), else in the window's zone.
    /// `at` itself when open. Daylight saving follows from "open" being read on the local
    /// clock: a start inside a spring-forward gap opens at the first instant after the gap (if
    /// that is still before `end`; a window wholly inside the gap stays shut that day), a start
    /// in a repeated hour opens at its first occurrence (and the window is open again, by the
    /// local clock, when the hour repeats). Looks at most 15 days ahead. A window `read` would
    /// refuse (no days, bad times, unknown zone) is treated as always open, so answers `at`.
    pub fn next_opening(&self, at: Timestamp, zone: Option<&str>) -> Timestamp {
        match self.rules(zone) {
            Some(rules) => rules.next_opening(at),
            None => at,
        }
    }

    /// Whether the window is open at `at`: the local date's weekday is one of `days` and the
    /// local time is in `[start, end)`, in `zone` if given and known, else the window's zone.
    pub fn is_open(&self, at: Timestamp, zone: Option<&str>) -> bool {
        self.rules(zone).is_none_or(|rules| rules.is_open(at))
    }

    fn rules(&self, zone: Option<&str>) -> Option<Rules> {
        let tz = zone
            .and_then(bundled_zone)
            .or_else(|| bundled_zone(&self.time_zone))?;
        let mut days = [false; 7];
        for day in &self.days {
            days[DAY_NAMES.iter().position(|name| name == day)?] = true;
        }
        let (start, end) = (parse_clock(&self.start)?, parse_clock(&self.end)?);
        (days.contains(&true) && start < end).then_some(Rules {
            tz,
            days,
            start,
            end,
        })
    }
}

fn read_days(fields: &mut FieldReader) -> Option<Vec<String>> {
    let items = match fields.take("days") {
        Field::Absent | Field::Null => {
            return Some(DAY_NAMES.iter().map(|d| d.to_string()).collect());
        }
        Field::Set(Value::Array(items)) if !items.is_empty() => items,
        Field::Set(_) => {
            fields.problem(
                "days",
                format!(
                    "must be a non-empty list of days from: {}",
                    DAY_NAMES.join(", ")
                ),
            );
            return None;
        }
    };
    let mut chosen = [false; 7];
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match item
            .as_str()
            .and_then(|day| DAY_NAMES.iter().position(|name| *name == day))
        {
            Some(position) => chosen[position] = true,
            None => {
                valid = false;
                fields.problem(
                    &format!("days[{index}]"),
                    format!("must be one of: {}", DAY_NAMES.join(", ")),
                );
            }
        }
    }
    valid.then(|| {
        DAY_NAMES
            .iter()
            .zip(chosen)
            .filter(|(_, chosen)| *chosen)
            .map(|(name, _)| name.to_string())
            .collect()
    })
}

fn read_clock(fields: &mut FieldReader, name: &str) -> Option<Time> {
    let clock = fields.read(name, |value| {
        value
            .as_str()
            .and_then(parse_clock)
            .ok_or_else(|| "must be a time of day as HH:MM, 24-hour (00:00 to 23:59)".to_owned())
    });
    match clock {
        Field::Set(time) => Some(time),
        Field::Null => {
            fields.problem(name, "must not be null");
            None
        }
        Field::Absent => {
            if !fields.has_problem(name) {
                fields.problem(name, "is required");
            }
            None
        }
    }
}

/// A calling window made ready to compute with.
struct Rules {
    tz: TimeZone,
    /// Monday first.
    days: [bool; 7],
    start: Time,
    end: Time,
}

impl Rules {
    fn is_open(&self, at: Timestamp) -> bool {
        let local = self.tz.to_datetime(at);
        self.days[day_index(local.weekday())]
            && self.start <= local.time()
            && local.time() < self.end
    }

    /// The open instants form intervals closed on the left; each begins either where the local
    /// clock reaches `start` on an allowed day or at a zone transition (the end of a gap, or a
    /// fall back into the window). So the answer is `at` or the earliest such instant after it
    /// that is open.
    fn next_opening(&self, at: Timestamp) -> Timestamp {
        if self.is_open(at) {
            return at;
        }
        let horizon = at
            .checked_add(SignedDuration::from_hours(24 * i64::from(SEARCH_DAYS + 1)))
            .unwrap_or(Timestamp::MAX);
        let mut candidates = Vec::new();
        let today = self.tz.to_datetime(at).date();
        for offset in -1..=SEARCH_DAYS {
            let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
                continue;
            };
            if !self.days[day_index(date.weekday())] {
                continue;
            }
            let local = date.to_datetime(self.start);
            match self.tz.to_ambiguous_timestamp(local).offset() {
                AmbiguousOffset::Unambiguous { offset } => {
                    candidates.extend(offset.to_timestamp(local).ok());
                }
                AmbiguousOffset::Fold { before, after } => {
                    candidates.extend(before.to_timestamp(local).ok());
                    candidates.extend(after.to_timestamp(local).ok());
                }
                // `start` does not exist that day: the transition that ends the gap is a
                // candidate below.
                AmbiguousOffset::Gap { .. } => {}
            }
        }
        candidates.extend(
            self.tz
                .following(at)
                .map(|transition| transition.timestamp())
                .take_while(|instant| *instant <= horizon),
        );
        candidates
            .into_iter()
            .filter(|instant| *instant >= at && self.is_open(*instant))
            .min()
            // Only a window shut for two weeks by daylight saving could get here.
            .unwrap_or(at)
    }
}

/// A reported call outcome (SPEC §7), snake_case in JSON.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
    WrongNumber,
    OptOut,
}

/// The outcomes' API names, in the SPEC's order.
pub const CALL_OUTCOMES: &[&str] = &[
    "answered",
    "no_answer",
    "busy",
    "voicemail",
    "failed",
    "wrong_number",
    "opt_out",
];

/// The outcomes a retry policy may retry on.
pub const RETRYABLE_OUTCOMES: &[&str] = &["no_answer", "busy", "voicemail", "failed"];

impl CallOutcome {
    pub const ALL: [CallOutcome; 7] = [
        Self::Answered,
        Self::NoAnswer,
        Self::Busy,
        Self::Voicemail,
        Self::Failed,
        Self::WrongNumber,
        Self::OptOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Voicemail => "voicemail",
            Self::Failed => "failed",
            Self::WrongNumber => "wrong_number",
            Self::OptOut => "opt_out",
        }
    }

    /// The outcome whose API name is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }

    /// Whether a retry policy may list it in `retry_on`.
    pub fn is_retryable(self) -> bool {
        RETRYABLE_OUTCOMES.contains(&self.as_str())
    }
}

pub const MAX_ATTEMPTS: u32 = 10;
pub const MIN_DELAY_S: u32 = 60;
/// One week.
pub const MAX_DELAY_S: u32 = 604_800;

/// SPEC §7 retry policy, serialized as the API shows it (all three fields, defaults filled).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub retry_on: Vec<CallOutcome>,
    pub delays_s: Vec<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            retry_on: vec![CallOutcome::NoAnswer, CallOutcome::Busy],
            delays_s: vec![900],
        }
    }
}

impl RetryPolicy {
    /// Reads the API value of field `field` (e.g. "retry_policy"); a missing (or `null`) key
    /// takes its default. `retry_on` comes back deduplicated, in the SPEC's order. Every problem
    /// names its path ("retry_policy.delays_s[1]").
    pub fn read(field: &str, value: Value) -> Result<Self, Vec<FieldProblem>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldProblem::new(
                field,
                "must be an object like {\"max_attempts\": 3, \"retry_on\": [\"no_answer\", \"busy\"], \"delays_s\": [900]}",
            )]);
        };
        let defaults = Self::default();
        let mut fields = FieldReader::nested(field, map);
        let max_attempts = match fields.integer("max_attempts", 1..=i64::from(MAX_ATTEMPTS)) {
            Field::Set(n) => u32::try_from(n).unwrap_or(1),
            Field::Null | Field::Absent => defaults.max_attempts,
        };
        let retry_on = read_retry_on(&mut fields).unwrap_or(defaults.retry_on);
        let delays_s = read_delays(&mut fields).unwrap_or(defaults.delays_s);
        let problems = fields.into_problems();
        if problems.is_empty() {
            Ok(Self {
                max_attempts,
                retry_on,
                delays_s,
            })
        } else {
            Err(problems)
        }
    }

    /// The delay before attempt `next` (2, 3, …): `delays_s[next - 2]`, the last one repeating
    /// (and the first for `next` below 2).
    pub fn delay_before(&self, next: u32) -> SignedDuration {
        let index = usize::try_from(next.saturating_sub(2)).unwrap_or(usize::MAX);
        let seconds = self
            .delays_s
            .get(index)
            .or(self.delays_s.last())
            .copied()
            .unwrap_or(900);
        SignedDuration::from_secs(i64::from(seconds))
    }

    /// Whether after `outcome` on attempt `attempt` another attempt is due.
    pub fn retries(&self, outcome: CallOutcome, attempt: u32) -> bool {
        attempt < self.max_attempts && self.retry_on.contains(&outcome)
    }
}

/// `None` when absent or `null` (the default applies) or refused (a problem is recorded).
fn read_retry_on(fields: &mut FieldReader) -> Option<Vec<CallOutcome>> {
    let items = match fields.take("retry_on") {
        Field::Absent | Field::Null => return None,
        Field::Set(Value::Array(items)) => items,
        Field::Set(_) => {
            fields.problem(
                "retry_on",
                format!(
                    "must be a list of outcomes from: {}",
                    RETRYABLE_OUTCOMES.join(", ")
                ),
            );
            return None;
        }
    };
    let mut outcomes = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item
            .as_str()
            .and_then(CallOutcome::from_name)
            .filter(|outcome| outcome.is_retryable())
        {
            Some(outcome) => outcomes.push(outcome),
            None => fields.problem(
                &format!("retry_on[{index}]"),
                format!("must be one of: {}", RETRYABLE_OUTCOMES.join(", ")),
            ),
        }
    }
    outcomes.sort();
    outcomes.dedup();
    Some(outcomes)
}

fn read_delays(fields: &mut FieldReader) -> Option<Vec<u32>> {
    let items = match fields.take("delays_s") {
        Field::Absent | Field::Null => return None,
        Field::Set(Value::Array(items)) if !items.is_empty() => items,
        Field::Set(_) => {
            fields.problem(
                "delays_s",
                format!(
                    "must be a non-empty list of delays in seconds, each from {MIN_DELAY_S} to {MAX_DELAY_S}"
                ),
            );
            return None;
        }
    };
    let mut delays = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match whole_number(item)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (MIN_DELAY_S..=MAX_DELAY_S).contains(n))
        {
            Some(seconds) => delays.push(seconds),
            None => fields.problem(
                &format!("delays_s[{index}]"),
                format!("must be a whole number of seconds from {MIN_DELAY_S} to {MAX_DELAY_S}"),
            ),
        }
    }
    Some(delays)
}

/// SPEC §7 dedupe: "none" (default) or "one_active_per_number".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    #[default]
    None,
    OneActivePerNumber,
}

pub const DEDUPE_VALUES: &[&str] = &["none", "one_active_per_number"];

impl Dedupe {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::OneActivePerNumber => "one_active_per_number",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn window(time_zone: &str, days: &[&str], start: &str, end: &str) -> CallingWindow {
        CallingWindow::read(
            "calling_window",
            json!({"time_zone": time_zone, "days": days, "start": start, "end": end}),
        )
        .unwrap()
    }

    fn every_day(time_zone: &str, start: &str, end: &str) -> CallingWindow {
        window(time_zone, DAY_NAMES, start, end)
    }

    const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri"];

    /// The fields named by the problems of a refused window.
    fn window_problems(value: Value) -> Vec<String> {
        let problems = CallingWindow::read("calling_window", value).unwrap_err();
        problems.into_iter().map(|p| p.field).collect()
    }

    fn retry_problems(value: Value) -> Vec<String> {
        let problems = RetryPolicy::read("retry_policy", value).unwrap_err();
        problems.into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn friday_evening_waits_for_monday_morning() {
        let office = window("America/New_York", WEEKDAYS, "09:00", "17:00");
        // Friday 18:00 EST.
        let friday = at("2026-11-20T23:00:00Z");
        assert_eq!(
            office.next_opening(friday, None),
            at("2026-11-23T14:00:00Z")
        );
    }

    #[test]
    fn a_window_on_saturdays_waits_for_the_next_saturday() {
        let saturdays = window("Europe/London", &["sat"], "10:00", "12:00");
        // Sunday 11:00 GMT: in the hours, not on the day.
        let sunday = at("2026-11-22T11:00:00Z");
        assert_eq!(
            saturdays.next_opening(sunday, None),
            at("2026-11-28T10:00:00Z")
        );
    }

    #[test]
    fn inside_the_window_is_now() {
        let office = window("America/New_York", WEEKDAYS, "09:00", "17:00");
        let friday_morning = at("2026-11-20T15:30:12.345Z");
        assert!(office.is_open(friday_morning, None));
        assert_eq!(office.next_opening(friday_morning, None), friday_morning);
    }

    #[test]
    fn the_end_is_shut_until_the_next_days_start() {
        let office = window("America/New_York", WEEKDAYS, "09:00", "17:00");
        // Thursday 17:00 EST exactly.
        let closing = at("2026-11-19T22:00:00Z");
        assert!(!office.is_open(closing, None));
        assert!(office.is_open(at("2026-11-19T21:59:59Z"), None));
        assert_eq!(
            office.next_opening(closing, None),
            at("2026-11-20T14:00:00Z")
        );
    }

    #[test]
    fn the_callbacks_zone_replaces_the_windows() {
        let office = window("America/New_York", WEEKDAYS, "09:00", "17:00");
        // Friday 18:00 in New York is already Saturday 08:00 in Tokyo.
        let friday = at("2026-11-20T23:00:00Z");
        assert_eq!(
            office.next_opening(friday, Some("Asia/Tokyo")),
            at("2026-11-23T00:00:00Z")
        );
        assert!(office.is_open(at("2026-11-23T00:00:00Z"), Some("Asia/Tokyo")));
        assert!(!office.is_open(at("2026-11-23T00:00:00Z"), None));
    }

    #[test]
    fn an_unknown_callback_zone_keeps_the_windows() {
        let office = window("America/New_York", WEEKDAYS, "09:00", "17:00");
        let friday = at("2026-11-20T23:00:00Z");
        assert_eq!(
            office.next_opening(friday, Some("Mars/Base")),
            at("2026-11-23T14:00:00Z")
        );
    }

    #[test]
    fn new_york_spring_forward_start_in_the_gap_opens_when_the_gap_ends() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z; 02:30 never happens.
        let night = every_day("America/New_York", "02:30", "04:00");
        let midnight = at("2026-03-08T05:00:00Z");
        assert_eq!(
            night.next_opening(midnight, None),
            at("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn new_york_spring_forward_window_ending_at_the_gap() {
        let night = every_day("America/New_York", "01:00", "03:00");
        assert_eq!(
            night.next_opening(at("2026-03-08T05:00:00Z"), None),
            at("2026-03-08T06:00:00Z")
        );
        let inside = at("2026-03-08T06:59:59Z");
        assert_eq!(night.next_opening(inside, None), inside);
        // 01:59:59 EST is followed by 03:00 EDT, the end: shut until 01:00 EDT the next day.
        assert_eq!(
            night.next_opening(at("2026-03-08T07:00:00Z"), None),
            at("2026-03-09T05:00:00Z")
        );
    }

    #[test]
    fn new_york_spring_forward_window_wholly_in_the_gap_waits_a_day() {
        let lost_hour = every_day("America/New_York", "02:00", "02:30");
        assert_eq!(
            lost_hour.next_opening(at("2026-03-08T05:00:00Z"), None),
            at("2026-03-09T06:00:00Z")
        );
    }

    #[test]
    fn new_york_fall_back_opens_at_the_first_occurrence() {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00–01:59 happens twice.
        let night = every_day("America/New_York", "01:00", "03:00");
        assert_eq!(
            night.next_opening(at("2026-11-01T04:00:00Z"), None),
            at("2026-11-01T05:00:00Z")
        );
        let repeated = at("2026-11-01T06:30:00Z");
        assert_eq!(night.next_opening(repeated, None), repeated);
        // 03:00 EST, the end.
        assert_eq!(
            night.next_opening(at("2026-11-01T08:00:00Z"), None),
            at("2026-11-02T06:00:00Z")
        );
    }

    #[test]
    fn new_york_fall_back_opens_again_when_the_clock_repeats_the_window() {
        let half_hour = every_day("America/New_York", "01:30", "02:00");
        assert_eq!(
            half_hour.next_opening(at("2026-11-01T04:00:00Z"), None),
            at("2026-11-01T05:30:00Z")
        );
        // 01:15 EST, between the two 01:30s.
        assert_eq!(
            half_hour.next_opening(at("2026-11-01T06:15:00Z"), None),
            at("2026-11-01T06:30:00Z")
        );
        // 01:45 EDT, after a window 01:00–01:30: the clock turns back into it at 06:00Z.
        let early = every_day("America/New_York", "01:00", "01:30");
        assert_eq!(
            early.next_opening(at("2026-11-01T05:45:00Z"), None),
            at("2026-11-01T06:00:00Z")
        );
    }

    #[test]
    fn london_spring_forward_opens_at_the_end_of_the_gap() {
        // 2026-03-29: 01:00 GMT becomes 02:00 BST at 01:00Z.
        let morning = every_day("Europe/London", "01:30", "09:00");
        assert_eq!(
            morning.next_opening(at("2026-03-29T00:00:00Z"), None),
            at("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn london_fall_back_repeats_the_hour() {
        // 2026-10-25: 02:00 BST becomes 01:00 GMT at 01:00Z.
        let night = every_day("Europe/London", "01:00", "02:00");
        assert_eq!(
            night.next_opening(at("2026-10-24T23:30:00Z"), None),
            at("2026-10-25T00:00:00Z")
        );
        let second_one_oclock = at("2026-10-25T01:00:00Z");
        assert_eq!(
            night.next_opening(second_one_oclock, None),
            second_one_oclock
        );
        assert_eq!(
            night.next_opening(at("2026-10-25T02:00:00Z"), None),
            at("2026-10-26T01:00:00Z")
        );
    }

    #[test]
    fn lord_howe_half_hour_spring_forward() {
        // 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11) at 15:30Z the day before.
        let night = every_day("Australia/Lord_Howe", "02:10", "03:00");
        assert_eq!(
            night.next_opening(at("2026-10-03T14:00:00Z"), None),
            at("2026-10-03T15:30:00Z")
        );
        let lost = every_day("Australia/Lord_Howe", "02:00", "02:20");
        assert_eq!(
            lost.next_opening(at("2026-10-03T14:00:00Z"), None),
            at("2026-10-04T15:00:00Z")
        );
    }

    #[test]
    fn lord_howe_half_hour_fall_back() {
        // 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30) at 15:00Z the day before.
        let night = every_day("Australia/Lord_Howe", "01:45", "03:00");
        assert_eq!(
            night.next_opening(at("2026-04-04T14:00:00Z"), None),
            at("2026-04-04T14:45:00Z")
        );
        // 01:30 (+10:30), before the repeated 01:45.
        assert_eq!(
            night.next_opening(at("2026-04-04T15:00:00Z"), None),
            at("2026-04-04T15:15:00Z")
        );
    }

    #[test]
    fn a_window_reads_with_defaults_and_shows_as_sent() {
        let office = CallingWindow::read(
            "calling_window",
            json!({"time_zone": "america/new_york", "start": "09:00", "end": "17:00"}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&office).unwrap(),
            json!({"time_zone": "America/New_York",
                   "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "start": "09:00", "end": "17:00"})
        );
        let twice = window("UTC", &["fri", "mon", "fri"], "00:00", "23:59");
        assert_eq!(twice.days, ["mon", "fri"]);
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        assert!(is_time_zone("Australia/Lord_Howe"));
        assert!(is_time_zone("UTC"));
        assert!(!is_time_zone("Mars/Base"));
        assert!(!is_time_zone("Etc/Unknown"));
        assert!(!is_time_zone(""));
    }

    #[test]
    fn an_unknown_zone_is_refused() {
        let value = json!({"time_zone": "Mars/Base", "start": "09:00", "end": "17:00"});
        assert_eq!(window_problems(value), ["calling_window.time_zone"]);
    }

    #[test]
    fn a_bad_day_is_refused_by_its_index() {
        let value = json!({"time_zone": "UTC", "days": ["mon", "tue", "funday"],
                           "start": "09:00", "end": "17:00"});
        assert_eq!(window_problems(value), ["calling_window.days[2]"]);
    }

    #[test]
    fn no_days_is_refused() {
        let value = json!({"time_zone": "UTC", "days": [], "start": "09:00", "end": "17:00"});
        assert_eq!(window_problems(value), ["calling_window.days"]);
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in ["25:00", "9:00", "09:60", "0900", "09:00:00", ""] {
            let value = json!({"time_zone": "UTC", "start": bad, "end": "17:00"});
            assert_eq!(window_problems(value), ["calling_window.start"], "{bad:?}");
        }
        let value = json!({"time_zone": "UTC", "start": "09:00", "end": 17});
        assert_eq!(window_problems(value), ["calling_window.end"]);
    }

    #[test]
    fn start_must_come_before_end() {
        for (start, end) in [("17:00", "09:00"), ("09:00", "09:00")] {
            let value = json!({"time_zone": "UTC", "start": start, "end": end});
            assert_eq!(window_problems(value), ["calling_window.end"]);
        }
    }

    #[test]
    fn window_fields_are_required_and_unknown_ones_refused() {
        let value = json!({"days": ["mon"], "colour": "blue"});
        assert_eq!(
            window_problems(value),
            [
                "calling_window.time_zone",
                "calling_window.start",
                "calling_window.end",
                "calling_window.colour"
            ]
        );
        assert_eq!(window_problems(json!("09:00-17:00")), ["calling_window"]);
    }

    #[test]
    fn retry_policy_defaults_fill_what_is_missing() {
        let policy = RetryPolicy::read("retry_policy", json!({"max_attempts": 3})).unwrap();
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            json!({"max_attempts": 3, "retry_on": ["no_answer", "busy"], "delays_s": [900]})
        );
        assert_eq!(
            RetryPolicy::read("retry_policy", json!({})).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn retry_on_is_deduplicated() {
        let policy = RetryPolicy::read(
            "retry_policy",
            json!({"retry_on": ["failed", "busy", "failed"], "delays_s": [60, 600.0]}),
        )
        .unwrap();
        assert_eq!(policy.retry_on, [CallOutcome::Busy, CallOutcome::Failed]);
        assert_eq!(policy.delays_s, [60, 600]);
    }

    #[test]
    fn max_attempts_is_one_to_ten() {
        for bad in [0, 11] {
            let value = json!({"max_attempts": bad});
            assert_eq!(retry_problems(value), ["retry_policy.max_attempts"]);
        }
    }

    #[test]
    fn answered_is_not_retried() {
        let value = json!({"retry_on": ["no_answer", "answered"]});
        assert_eq!(retry_problems(value), ["retry_policy.retry_on[1]"]);
    }

    #[test]
    fn delays_are_one_minute_to_one_week() {
        assert_eq!(
            retry_problems(json!({"delays_s": [59]})),
            ["retry_policy.delays_s[0]"]
        );
        assert_eq!(
            retry_problems(json!({"delays_s": [60, 604_801]})),
            ["retry_policy.delays_s[1]"]
        );
        assert_eq!(
            retry_problems(json!({"delays_s": []})),
            ["retry_policy.delays_s"]
        );
        assert_eq!(
            retry_problems(json!({"delays_s": [900, "900", 90.5, null]})),
            [
                "retry_policy.delays_s[1]",
                "retry_policy.delays_s[2]",
                "retry_policy.delays_s[3]"
            ]
        );
        assert_eq!(
            retry_problems(json!({"delays_s": 900})),
            ["retry_policy.delays_s"]
        );
    }

    #[test]
    fn retry_policy_refuses_unknown_keys() {
        let value = json!({"max_attempts": 2, "backoff": "exponential"});
        assert_eq!(retry_problems(value), ["retry_policy.backoff"]);
    }

    #[test]
    fn the_last_delay_repeats() {
        let policy = RetryPolicy {
            max_attempts: 5,
            retry_on: RetryPolicy::default().retry_on,
            delays_s: vec![60, 300],
        };
        assert_eq!(policy.delay_before(2), SignedDuration::from_secs(60));
        assert_eq!(policy.delay_before(3), SignedDuration::from_secs(300));
        assert_eq!(policy.delay_before(4), SignedDuration::from_secs(300));
        assert_eq!(policy.delay_before(10), SignedDuration::from_secs(300));
    }

    #[test]
    fn no_retry_at_max_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.retries(CallOutcome::NoAnswer, 1));
        assert!(policy.retries(CallOutcome::Busy, 2));
        assert!(!policy.retries(CallOutcome::NoAnswer, 3));
        assert!(!policy.retries(CallOutcome::Voicemail, 1));
        assert!(!policy.retries(CallOutcome::Answered, 1));
        assert!(!RetryPolicy::default().retries(CallOutcome::NoAnswer, 1));
    }

    #[test]
    fn outcome_and_dedupe_names_match_their_json() {
        for (outcome, name) in CallOutcome::ALL.into_iter().zip(CALL_OUTCOMES) {
            assert_eq!(outcome.as_str(), *name);
            assert_eq!(serde_json::to_value(outcome).unwrap(), json!(name));
            assert_eq!(CallOutcome::from_name(name), Some(outcome));
        }
        for (dedupe, name) in [Dedupe::None, Dedupe::OneActivePerNumber]
            .into_iter()
            .zip(DEDUPE_VALUES)
        {
            assert_eq!(dedupe.as_str(), *name);
            assert_eq!(serde_json::to_value(dedupe).unwrap(), json!(name));
        }
        assert_eq!(Dedupe::default(), Dedupe::None);
    }
}
