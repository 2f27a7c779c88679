//! The `dispatch` function: the scheduler's target. EventBridge Scheduler invokes it with a
//! job — a callback's dispatch at its `scheduled_at` (`{"callback_id", "organization_id"}`),
//! or a webhook delivery's next try (`{"organization_id", "delivery_id", "attempt"}`) — and it
//! is invoked asynchronously for "now". Late or repeated invocations are no-ops; an error (the
//! store unreachable) fails the invocation so the scheduler retries it.

use flowline_core::jobs::{self, JobDone};
use flowline_core::scheduler::Job;
use flowline_core::{ApiResult, App};

pub async fn handle(app: &App, job: Job) -> ApiResult<JobDone> {
    jobs::run(app, &job).await
}
