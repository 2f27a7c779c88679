//! The `sweeper` function, run every 5 minutes by an EventBridge schedule: dispatches
//! `scheduled` callbacks more than 2 minutes overdue and `dispatching` ones whose lease ran
//! out, so a lost schedule or a crashed dispatch cannot lose a callback.

use std::time::Duration;

use flowline_core::callbacks::dispatch::{self, SweepReport};
use flowline_core::{ApiResult, App};

/// Leaves a minute of the function's 5-minute timeout for a dispatch that started last.
pub const BUDGET: Duration = Duration::from_secs(240);

/// `_tick` is the scheduled event, whose content does not matter.
pub async fn handle(app: &App, _tick: serde_json::Value) -> ApiResult<SweepReport> {
    dispatch::sweep(app, BUDGET).await
}
