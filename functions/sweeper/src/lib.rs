//! The `sweeper` function, run every 5 minutes by an EventBridge schedule: finds `scheduled`
//! callbacks more than 2 minutes overdue and `dispatching` ones whose lease ran out, and hands
//! each to the `dispatch` function (an asynchronous invocation), so a lost schedule or a crashed
//! dispatch cannot lose a callback. It resumes each shard of the due index where its last run
//! stopped, so a backlog of any size is worked through, run after run.

use std::time::Duration;

use flowline_core::callbacks::dispatch::{self, SweepReport};
use flowline_core::{ApiResult, App, deadline};

/// Kept of the invocation's time for saving where each shard stopped.
const MARGIN: Duration = Duration::from_secs(10);

/// `_tick` is the scheduled event, whose content does not matter.
pub async fn handle(app: &App, _tick: serde_json::Value) -> ApiResult<SweepReport> {
    dispatch::sweep(app, deadline::remaining().saturating_sub(MARGIN)).await
}
