//! The `sweeper` function, run every 5 minutes by an EventBridge schedule: the safety net under
//! the schedules and the stream (see `flowline_core::sweeper`). It hands each overdue callback
//! and delivery retry to the `dispatch` function (an asynchronous invocation), and writes again
//! the outbox items the stream did not hand out, so a lost schedule, a crashed dispatch or a
//! stream batch given up on cannot lose a callback or an event.

use std::time::Duration;

use flowline_core::sweeper::{self, SweepReport};
use flowline_core::{ApiResult, App, deadline};

/// Kept of the invocation's time for saving where each shard stopped.
const MARGIN: Duration = Duration::from_secs(10);

/// `_tick` is the scheduled event, whose content does not matter.
pub async fn handle(app: &App, _tick: serde_json::Value) -> ApiResult<SweepReport> {
    sweeper::sweep(app, deadline::remaining().saturating_sub(MARGIN)).await
}
