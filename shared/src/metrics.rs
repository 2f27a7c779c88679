//! Flowline's business metrics: what an operator graphs and alarms on (callbacks created,
//! dispatched and failed by cause, dispatch lag, webhook attempts and failures, requests refused
//! by a rate limit).
//!
//! The core only says that something happened: each metric is a `tracing` event of target
//! [`TARGET`] with the fields `metric`, `value`, `unit` and, for a breakdown, `dimension`
//! (`"Cause=EXPIRED"`). What becomes of it is the subscriber's business: in Lambda,
//! `flowline_lambda::metrics` prints each as one CloudWatch Embedded Metric Format line
//! (CloudWatch Logs turns it into a metric, no API call, no latency); the local server keeps
//! them out of its logs. So recording a metric costs a use case one line and no port. (This
//! module imports no other of the core: any module can record without an import circle.)

use jiff::Timestamp;

/// The `tracing` target of metric events.
pub const TARGET: &str = "flowline_metrics";

/// The metrics' names, as CloudWatch shows them.
pub mod name {
    pub const CALLBACKS_CREATED: &str = "CallbacksCreated";
    pub const CALLBACKS_DISPATCHED: &str = "CallbacksDispatched";
    /// Dispatches that ended `failed`; also broken down by `Cause`.
    pub const CALLBACKS_FAILED: &str = "CallbacksFailed";
    /// From `scheduled_at` to the end of a successful delivery, in milliseconds.
    pub const DISPATCH_LAG: &str = "DispatchLag";
    /// Every HTTP try of a webhook delivery (dispatches and lifecycle events alike).
    pub const WEBHOOK_ATTEMPTS: &str = "WebhookAttempts";
    /// Tries that got no 2xx.
    pub const WEBHOOK_FAILURES: &str = "WebhookFailures";
    /// Requests answered 429; also broken down by `Scope` (organization, trigger, source).
    pub const RATE_LIMITED: &str = "RateLimited";
}

pub const COUNT: &str = "Count";
pub const MILLISECONDS: &str = "Milliseconds";

fn emit(metric: &'static str, value: f64, unit: &'static str, dimension: Option<String>) {
    match dimension {
        Some(dimension) => {
            tracing::info!(target: TARGET, metric, value, unit, dimension = %dimension)
        }
        None => tracing::info!(target: TARGET, metric, value, unit),
    }
}

/// A callback was stored (by the API or a trigger URL).
pub fn callback_created() {
    emit(name::CALLBACKS_CREATED, 1.0, COUNT, None);
}

/// A dispatch ended with a callback recorded as `status`: `dispatched` (with its lag from
/// `scheduled_at` to `dispatched_at`) or `failed` (by cause: the code before any `:`, so
/// `WEBHOOK_FAILED: 503 from …` counts as `WEBHOOK_FAILED`).
pub fn dispatch_finished(
    status: &str,
    failure_cause: Option<&str>,
    scheduled_at: Timestamp,
    dispatched_at: Option<Timestamp>,
) {
    match status {
        "dispatched" => {
            emit(name::CALLBACKS_DISPATCHED, 1.0, COUNT, None);
            if let Some(at) = dispatched_at {
                emit(
                    name::DISPATCH_LAG,
                    lag_ms(scheduled_at, at),
                    MILLISECONDS,
                    None,
                );
            }
        }
        "failed" => {
            let cause =
                failure_cause.map_or("UNKNOWN", |cause| cause.split(':').next().unwrap_or(cause));
            emit(
                name::CALLBACKS_FAILED,
                1.0,
                COUNT,
                Some(format!("Cause={}", cause.trim())),
            );
        }
        _ => {}
    }
}

/// Milliseconds from `scheduled_at` to `delivered_at`; 0 for a callback dispatched before its
/// time (by hand).
fn lag_ms(scheduled_at: Timestamp, delivered_at: Timestamp) -> f64 {
    let lag = delivered_at.as_millisecond() - scheduled_at.as_millisecond();
    lag.max(0) as f64
}

/// One HTTP try of a webhook delivery, which got a 2xx or not.
pub fn webhook_attempt(succeeded: bool) {
    emit(name::WEBHOOK_ATTEMPTS, 1.0, COUNT, None);
    if !succeeded {
        emit(name::WEBHOOK_FAILURES, 1.0, COUNT, None);
    }
}

/// A request refused by the budget of `scope` (`organization`, `trigger`, `source`).
pub fn rate_limited(scope: &'static str) {
    emit(
        name::RATE_LIMITED,
        1.0,
        COUNT,
        Some(format!("Scope={scope}")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_never_negative() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let later = Timestamp::from_millisecond(1_800_000_000_250).unwrap();
        assert_eq!(lag_ms(at, later), 250.0);
        assert_eq!(lag_ms(later, at), 0.0);
    }
}
