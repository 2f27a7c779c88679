//! Request budgets (SPEC §1): each organization (default 100 requests a second, bursts of 200),
//! each trigger URL (10 a second, bursts of 20), and — for calls to a trigger URL with a wrong
//! signature — each source address, checked before anything is read.
//!
//! Two parts, so a budget costs no store write per request:
//! - A token bucket per budget in this process (the local server; one Lambda sandbox): exact,
//!   free, and what decides each request.
//! - A shared window per budget in the store (`RATE#<budget>#<window start>`), which every
//!   process adds what it admitted to — at most once a second per budget, not per request —
//!   and reads the total back from: when the processes together are over the budget for the
//!   window (10 s), each refuses that budget's requests until the window ends. So N Lambda
//!   sandboxes cannot each spend the whole budget for more than about a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::error::ApiError;
use crate::store::{Key, Table};

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

impl Limit {
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }

    /// `"100/200"`: requests a second, then the burst.
    pub fn parse(text: &str) -> Option<Self> {
        let (rate, burst) = text.trim().split_once('/')?;
        let (rate, burst): (f64, f64) = (rate.trim().parse().ok()?, burst.trim().parse().ok()?);
        (rate > 0.0 && burst >= 1.0 && rate.is_finite() && burst.is_finite())
            .then_some(Self::new(rate, burst))
    }
}

/// The budgets of SPEC §1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub organization: Limit,
    pub trigger: Limit,
    /// Calls to a trigger URL with a wrong signature, per source address.
    pub bad_signature: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            organization: Limit::new(100.0, 200.0),
            trigger: Limit::new(10.0, 20.0),
            bad_signature: Limit::new(1.0, 10.0),
        }
    }
}

/// What a budget is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Budget {
    Organization(String),
    Trigger(String),
    BadSignature(String),
}

impl Budget {
    fn name(&self) -> String {
        match self {
            Self::Organization(id) => format!("org:{id}"),
            Self::Trigger(id) => format!("trigger:{id}"),
            Self::BadSignature(address) => format!("source:{address}"),
        }
    }

    /// The 429 of a request over this budget, counted (metric `RateLimited`, by scope).
    fn refused(&self, retry_after: u64) -> ApiError {
        crate::metrics::rate_limited(match self {
            Self::Organization(_) => "organization",
            Self::Trigger(_) => "trigger",
            Self::BadSignature(_) => "source",
        });
        ApiError::rate_limited(self.what(), retry_after)
    }

    fn what(&self) -> &'static str {
        match self {
            Self::Organization(_) => "this organization",
            Self::Trigger(_) => "this trigger URL",
            Self::BadSignature(_) => "calls with a wrong signature from this address",
        }
    }
}

/// How long a shared window is, and how often a process adds to it.
const WINDOW: SignedDuration = SignedDuration::from_secs(10);
const FLUSH_EVERY: SignedDuration = SignedDuration::from_secs(1);

struct Bucket {
    tokens: f64,
    updated: Timestamp,
    /// Admitted since the last time they were added to the shared window.
    pending: i64,
    flushed: Timestamp,
    /// While set: the processes together are over this budget until then.
    refused_until: Option<Timestamp>,
}

impl Bucket {
    fn new(limit: Limit, now: Timestamp) -> Self {
        Self {
            tokens: limit.burst,
            updated: now,
            pending: 0,
            flushed: now,
            refused_until: None,
        }
    }

    fn refill(&mut self, limit: Limit, now: Timestamp) {
        let elapsed = now.duration_since(self.updated).as_secs_f64().max(0.0);
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.updated = now;
    }

    /// Whole seconds until a token is there again.
    fn wait(&self, limit: Limit) -> u64 {
        ((1.0 - self.tokens) / limit.per_second).ceil().max(1.0) as u64
    }
}

/// The budgets of this process, and (optionally) the store their shared windows live in.
pub struct RateLimiter {
    limits: Limits,
    buckets: Mutex<HashMap<Budget, Bucket>>,
    shared: Option<Arc<dyn Table>>,
}

impl RateLimiter {
    /// Budgets kept in this process only (the local server: one process sees every request).
    pub fn local(limits: Limits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Budgets shared by every process through `table` (Lambda sandboxes).
    pub fn shared(limits: Limits, table: Arc<dyn Table>) -> Self {
        Self {
            shared: Some(table),
            ..Self::local(limits)
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn limit_of(&self, budget: &Budget) -> Limit {
        match budget {
            Budget::Organization(_) => self.limits.organization,
            Budget::Trigger(_) => self.limits.trigger,
            Budget::BadSignature(_) => self.limits.bad_signature,
        }
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<Budget, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spends one request of `budget` at `now`, or answers the 429 (with `Retry-After`).
    pub async fn admit(&self, budget: &Budget, now: Timestamp) -> Result<(), ApiError> {
        self.admit_with(budget, self.limit_of(budget), now).await
    }

    /// [`admit`](Self::admit) under another limit than the deployment's (an organization's own).
    pub async fn admit_with(
        &self,
        budget: &Budget,
        limit: Limit,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let flush = {
            let mut buckets = self.buckets();
            let bucket = buckets
                .entry(budget.clone())
                .or_insert_with(|| Bucket::new(limit, now));
            if let Some(until) = bucket.refused_until {
                if now < until {
                    let wait = until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64;
                    return Err(budget.refused(wait));
                }
                bucket.refused_until = None;
            }
            bucket.refill(limit, now);
            if bucket.tokens < 1.0 {
                return Err(budget.refused(bucket.wait(limit)));
            }
            bucket.tokens -= 1.0;
            bucket.pending += 1;
            if self.shared.is_some() && now.duration_since(bucket.flushed) >= FLUSH_EVERY {
                bucket.flushed = now;
                Some(std::mem::take(&mut bucket.pending))
            } else {
                None
            }
        };
        if let (Some(table), Some(admitted)) = (&self.shared, flush) {
            self.add_to_window(table.as_ref(), budget, limit, admitted, now)
                .await;
        }
        Ok(())
    }

    /// Whether `budget` has room, without spending any (the check made before reading the
    /// store for a trigger call: a source address that has been sending wrong signatures is
    /// refused before its next call costs a read).
    pub fn has_room(&self, budget: &Budget, now: Timestamp) -> Result<(), ApiError> {
        let limit = self.limit_of(budget);
        let mut buckets = self.buckets();
        let Some(bucket) = buckets.get_mut(budget) else {
            return Ok(());
        };
        bucket.refill(limit, now);
        if bucket.tokens < 1.0 {
            return Err(budget.refused(bucket.wait(limit)));
        }
        Ok(())
    }

    /// Adds what this process admitted to the budget's current window, and refuses the budget
    /// until the window ends when all processes together are over it. A store failure leaves
    /// the decision to the local bucket: the budget is a guard, not a reason to fail requests.
    async fn add_to_window(
        &self,
        table: &dyn Table,
        budget: &Budget,
        limit: Limit,
        admitted: i64,
        now: Timestamp,
    ) {
        let window_ms = WINDOW.as_millis() as i64;
        let start = now.as_millisecond().div_euclid(window_ms) * window_ms;
        let key = Key::new(format!("RATE#{}#{start}", budget.name()), "WINDOW");
        // Kept a minute past its window, then DynamoDB's TTL removes it.
        let expires_at = (start + window_ms) / 1000 + 60;
        let total = match table.increment(&key, admitted, Some(expires_at)).await {
            Ok(total) => total,
            Err(err) => {
                tracing::warn!(%err, "could not share a rate window");
                return;
            }
        };
        let allowed = limit.per_second * WINDOW.as_secs_f64() + limit.burst;
        if total as f64 > allowed {
            let end = Timestamp::from_millisecond(start + window_ms).unwrap_or(now);
            if let Some(bucket) = self.buckets().get_mut(budget) {
                bucket.refused_until = Some(end);
            }
        }
    }
}

/// Budgets of this process that no request has used for a while are of no use: the map is
/// trimmed to keep its memory bounded.
impl RateLimiter {
    pub fn forget_idle(&self, now: Timestamp) {
        let limits = self.limits;
        self.buckets().retain(|budget, bucket| {
            let limit = match budget {
                Budget::Organization(_) => limits.organization,
                Budget::Trigger(_) => limits.trigger,
                Budget::BadSignature(_) => limits.bad_signature,
            };
            // Full again and not refused: the same as a new bucket.
            let full_after = SignedDuration::from_secs_f64(limit.burst / limit.per_second);
            now.duration_since(bucket.updated) < full_after || bucket.refused_until.is_some()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryTable;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + (seconds * 1000.0) as i64).unwrap()
    }

    #[tokio::test]
    async fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::local(Limits::default());
        let org = Budget::Organization("org_a".to_owned());
        for _ in 0..200 {
            limiter
                .admit(&org, at(0.0))
                .await
                .expect("within the burst");
        }
        let refused = limiter.admit(&org, at(0.0)).await.unwrap_err();
        assert_eq!(refused.code, crate::error::ErrorCode::RateLimited);
        assert_eq!(refused.retry_after, Some(1));
        // A tenth of a second later, 10 more.
        for _ in 0..10 {
            limiter.admit(&org, at(0.1)).await.expect("refilled");
        }
        assert!(limiter.admit(&org, at(0.1)).await.is_err());
        // Another organization has its own budget.
        let other = Budget::Organization("org_b".to_owned());
        limiter
            .admit(&other, at(0.1))
            .await
            .expect("its own budget");
    }

    #[tokio::test]
    async fn processes_sharing_a_window_refuse_together_once_over_it() {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let limits = Limits {
            organization: Limit::new(1.0, 5.0),
            ..Limits::default()
        };
        // Two sandboxes: each alone would admit 5 at once and 1 a second after.
        let a = RateLimiter::shared(limits, table.clone());
        let b = RateLimiter::shared(limits, table.clone());
        let org = Budget::Organization("org_a".to_owned());
        // A window of 10 s allows 1 × 10 + 5 = 15 in all. Each admits its burst, and adds to
        // the window once a second.
        let mut admitted = 0;
        for second in 0..9 {
            for limiter in [&a, &b] {
                while limiter.admit(&org, at(f64::from(second))).await.is_ok() {
                    admitted += 1;
                }
            }
        }
        // Together they went a little over (each decides alone between its flushes), then
        // both refuse until the window ends.
        assert!(admitted > 15 && admitted <= 15 + 2 * 2, "{admitted}");
        assert!(a.admit(&org, at(9.5)).await.is_err());
        assert!(b.admit(&org, at(9.5)).await.is_err());
        a.admit(&org, at(10.5)).await.expect("a new window");
    }

    #[tokio::test]
    async fn checking_for_room_spends_nothing() {
        let limiter = RateLimiter::local(Limits::default());
        let source = Budget::BadSignature("203.0.113.7".to_owned());
        assert!(limiter.has_room(&source, at(0.0)).is_ok());
        for _ in 0..10 {
            limiter.admit(&source, at(0.0)).await.unwrap();
        }
        assert!(limiter.has_room(&source, at(0.0)).is_err());
        assert!(limiter.has_room(&source, at(0.0)).is_err(), "still none");
        assert!(limiter.has_room(&source, at(1.0)).is_ok(), "one a second");
    }

    #[test]
    fn limits_read_as_rate_slash_burst() {
        assert_eq!(Limit::parse("100/200"), Some(Limit::new(100.0, 200.0)));
        assert_eq!(Limit::parse(" 2.5 / 5 "), Some(Limit::new(2.5, 5.0)));
        for bad in ["100", "0/10", "10/0", "a/b", "-1/5", "inf/5"] {
            assert_eq!(Limit::parse(bad), None, "{bad}");
        }
    }
}
