//! How long the work in hand may still take: every request and invocation runs within a
//! deadline measured from its start (an HTTP route: API Gateway's 29 s, less a margin; an event:
//! the Lambda invocation's own deadline, less a margin), and whatever retries on the way —
//! the store's conflicts and throttles, a lost race, a webhook attempt — stops trying when it
//! runs out, so the answer (or the record of a dispatch) always gets out in time.
//!
//! The deadline travels with the task (a tokio task-local), so use cases need not pass it along.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// An HTTP route's time: API Gateway gives an integration 29 s, and the answer must get back
/// before that.
pub const HTTP_BUDGET: Duration = Duration::from_secs(28);
/// Work that runs outside any request or invocation (the local server's timers): as long as a
/// route's, so a dispatch is bounded alike wherever it runs.
pub const DEFAULT_BUDGET: Duration = HTTP_BUDGET;

/// Runs `work` with `deadline` as its deadline.
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline of the work in hand (without one: [`DEFAULT_BUDGET`] from now).
pub fn current() -> Instant {
    DEADLINE
        .try_with(|deadline| *deadline)
        .unwrap_or_else(|_| Instant::now() + DEFAULT_BUDGET)
}

/// What is left of it.
pub fn remaining() -> Duration {
    current().saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_travels_with_the_task() {
        let deadline = Instant::now() + Duration::from_secs(3);
        let left = within(deadline, async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            (current(), remaining())
        })
        .await;
        assert_eq!(left, (deadline, Duration::from_secs(2)));
        // Outside any scope: the default budget, from now.
        assert_eq!(remaining(), DEFAULT_BUDGET);
    }
}
