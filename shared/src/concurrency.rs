//! Optimistic concurrency: a use case reads, decides, and writes on condition that nothing it
//! read has changed. When another request won the race, the whole attempt runs again from the
//! read, so it decides on what is true now — after a pause ([`Backoff`]), so contenders spread
//! out instead of colliding again, until the request's deadline.

use std::time::Duration;

use rand::Rng;

use crate::deadline;
use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

/// Capped exponential backoff with full jitter: the pause before attempt n+1 is uniform in
/// [0, min(cap, base·2ⁿ)], so contenders that collided spread out (AWS's recommended shape for
/// retries against DynamoDB), and nothing waits past the deadline of the work in hand.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    /// The deadline of the work in hand when the retries began.
    deadline: tokio::time::Instant,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
            deadline: deadline::current(),
        }
    }

    /// For lost races and store conflicts: 10 ms, doubling, at most 1 s.
    pub fn for_store() -> Self {
        Self::new(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The next pause (drawn at random), and one more attempt counted.
    pub fn next_pause(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt += 1;
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }

    /// Pauses before the next attempt; `false` (at once) when the pause would end past the
    /// deadline, leaving `keep` of it for the work after the attempts.
    pub async fn pause(&mut self, keep: Duration) -> bool {
        let pause = self.next_pause();
        let remaining = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if pause + keep >= remaining {
            return false;
        }
        tokio::time::sleep(pause).await;
        true
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Why an attempt ended without a result.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    /// A conditional write lost to a concurrent one: read again and retry.
    Raced,
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ConditionFailed => Self::Raced,
            other => Self::Api(other.into()),
        }
    }
}

/// Runs `attempt` until it succeeds, fails for a reason other than a lost race, or the deadline
/// of the work in hand is near: then the caller is told to retry (503, `Retry-After`). Write it
/// as `move || async move { … }` over borrowed inputs.
pub async fn optimistic<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut backoff = Backoff::for_store();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Api(err)) => return Err(err),
            Err(Failure::Raced) => {
                if !backoff.pause(Duration::from_millis(500)).await {
                    tracing::warn!(
                        attempts = backoff.attempts(),
                        "gave up on a resource other requests keep changing"
                    );
                    return Err(ApiError::unavailable());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    #[test]
    fn pauses_grow_exponentially_up_to_the_cap_with_full_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        for ceiling in [10, 20, 40, 80, 80, 80] {
            let pause = backoff.next_pause();
            assert!(
                pause <= Duration::from_millis(ceiling),
                "{pause:?} > {ceiling} ms"
            );
        }
        // Full jitter: pauses spread over the whole range, not around the ceiling.
        let pauses: Vec<Duration> = (0..200)
            .map(|_| {
                Backoff::new(Duration::from_millis(80), Duration::from_millis(80)).next_pause()
            })
            .collect();
        assert!(pauses.iter().any(|p| *p < Duration::from_millis(20)));
        assert!(pauses.iter().any(|p| *p > Duration::from_millis(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_is_retried_until_the_deadline_then_answered_503() {
        let attempts = AtomicU32::new(0);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let outcome: ApiResult<()> = deadline::within(
            deadline,
            optimistic(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(Failure::Raced)
            }),
        )
        .await;
        let err = outcome.unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::UpstreamUnavailable);
        assert!(attempts.load(Ordering::SeqCst) > 5, "retried many times");
        assert!(Instant::now() <= deadline, "within the deadline");

        // A race won after a few losses is a success.
        let attempts = AtomicU32::new(0);
        let won = deadline::within(
            Instant::now() + Duration::from_secs(5),
            optimistic(|| async {
                if attempts.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(Failure::Raced)
                } else {
                    Ok(7)
                }
            }),
        )
        .await;
        assert_eq!(won.unwrap(), 7);
    }
}
