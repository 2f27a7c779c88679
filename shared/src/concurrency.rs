//! Optimistic concurrency: a use case reads, decides, and writes on condition that nothing it
//! read has changed. When another request won the race, the whole attempt runs again from the
//! read, so it decides on what is true now.

use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

/// Enough for real contention on one resource; beyond it the caller is told to retry.
const ATTEMPTS: usize = 5;

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

/// Runs `attempt` until it succeeds, fails for a reason other than a lost race, or has lost
/// [`ATTEMPTS`] races. Write it as `move || async move { … }` over borrowed inputs.
pub async fn optimistic<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    for _ in 0..ATTEMPTS {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Api(err)) => return Err(err),
            Err(Failure::Raced) => tokio::task::yield_now().await,
        }
    }
    Err(ApiError::conflict(
        "The resource is being changed by other requests; retry",
    ))
}
