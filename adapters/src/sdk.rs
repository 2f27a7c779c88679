//! One way to configure the AWS SDK: a single `SdkConfig`, loaded once per process before any
//! client is built, from the standard environment (region, credentials, `AWS_ENDPOINT_URL`),
//! with timeouts on every call, so a slow or silent dependency fails fast enough for the
//! request's own deadline (`flowline_core::deadline`) to be kept.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// A connection to an AWS endpoint in the same region takes milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt of one call (a 100-item transaction included).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// A whole call, the SDK's own retries included; Flowline's retries (until the deadline) come
/// on top of it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared configuration every client of this process is built from.
pub async fn load() -> aws_config::SdkConfig {
    defaults().load().await
}

/// The loader [`load`] uses, for a caller that sets more (a test's endpoint).
pub fn defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        // Standard mode: three attempts, exponential backoff with jitter, a retry quota.
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}
