//! The `dispatch` function: EventBridge Scheduler invokes it at a callback's `scheduled_at` with
//! `{"callback_id", "organization_id"}` (and it is invoked asynchronously for "dispatch now").
//! Late or repeated invocations are no-ops; an error (the store unreachable) fails the
//! invocation so the scheduler retries it.

use flowline_core::callbacks::dispatch;
use flowline_core::scheduler::DispatchJob;
use flowline_core::{ApiResult, App};
use serde::Serialize;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DispatchResult {
    pub callback_id: String,
    /// The status the callback ended in, or `null` when there was nothing to do.
    pub status: Option<String>,
}

pub async fn handle(app: &App, job: DispatchJob) -> ApiResult<DispatchResult> {
    let done = dispatch::run_job(app, &job).await?;
    Ok(DispatchResult {
        callback_id: job.callback_id,
        status: done.map(|callback| callback.status.as_str().to_owned()),
    })
}
