//! Dispatch (SPEC §4): move a due callback `scheduled → dispatching` with one conditional write
//! (so of concurrent dispatchers exactly one wins), deliver `callback.dispatch` to the
//! organization's endpoints, record `dispatched` or `failed`, then emit the lifecycle event.
//! The scheduler's invocations, the sweeper and `POST …/dispatch` all come through here.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::time::Instant;

use super::model::{Callback, CallbackStatus, StoredCallback};
use super::service::{event_data, load};
use super::store;
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::{Failure, optimistic};
use crate::error::{ApiError, ApiResult};
use crate::flows::model::FlowView;
use crate::flows::store as store_flows;
use crate::ids;
use crate::scheduler::{DispatchJob, JobRunner};
use crate::store::Loaded;
use crate::webhooks::delivery::{
    DISPATCH_DEADLINE, Delivered, Event, LIFECYCLE_DEADLINE, deliver, emit_until,
};
use crate::webhooks::{EventType, subscribers};

/// How long a dispatcher owns a `dispatching` callback: longer than a whole dispatch (25 s) with
/// a wide margin, short enough that a crashed dispatcher's callback is retried soon.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);
/// A schedule may fire this much before `scheduled_at` and still count (clock skew); earlier,
/// it is a stale schedule of a callback that was moved later.
const EARLY_TOLERANCE: SignedDuration = SignedDuration::from_secs(30);
/// Characters (not bytes) of a receiver's `session_id` Flowline keeps (SPEC §4).
const MAX_SESSION_ID: usize = 255;
/// Delivery (25 s) plus recording and the lifecycle event: `POST …/dispatch` answers within
/// API Gateway's 29 s.
const WHOLE_DISPATCH: std::time::Duration = std::time::Duration::from_secs(27);

pub const FLOW_INACTIVE: &str = "FLOW_INACTIVE";
pub const EXPIRED: &str = "EXPIRED";
pub const NO_DISPATCH_TARGET: &str = "NO_DISPATCH_TARGET";

/// Takes the callback for this dispatcher: `dispatching`, with a lease.
async fn take(
    app: &App,
    before: &Loaded<StoredCallback>,
    keep_event_id: bool,
) -> Result<Loaded<StoredCallback>, Failure> {
    let now = app.clock.now();
    let mut after = before.value.clone();
    after.callback.status = CallbackStatus::Dispatching;
    after.callback.attempted_at = Some(now);
    after.callback.failure_cause = None;
    after.callback.updated_at = now;
    after.lease_until_ms = Some((now + LEASE).as_millisecond());
    if !keep_event_id || after.dispatch_event_id.is_none() {
        after.dispatch_event_id = Some(ids::new_id("evt_", now.as_millisecond()));
    }
    let rev = store::save(app.store.as_ref(), Some(before), &after).await?;
    Ok(Loaded { value: after, rev })
}

/// A scheduler (or sweeper) invocation: dispatch if the callback is due and nobody else owns it;
/// otherwise (gone, cancelled, done, not yet due, leased) do nothing. `None`: nothing done.
pub async fn run_job(app: &App, job: &DispatchJob) -> ApiResult<Option<Callback>> {
    let taken = optimistic(move || async move {
        let Some(before) =
            store::load(app.store.as_ref(), &job.organization_id, &job.callback_id).await?
        else {
            return Ok(None);
        };
        let now = app.clock.now();
        let callback = &before.value.callback;
        let takeable = match callback.status {
            CallbackStatus::Scheduled => callback.scheduled_at <= now + EARLY_TOLERANCE,
            CallbackStatus::Dispatching => before
                .value
                .lease_until_ms
                .is_some_and(|until| until <= now.as_millisecond()),
            _ => false,
        };
        if !takeable {
            return Ok(None);
        }
        // A lease taken over continues the same dispatch: same event id for the receiver.
        let keep_event_id = callback.status == CallbackStatus::Dispatching;
        take(app, &before, keep_event_id)
            .await
            .map(|taken| Some((taken, before.value)))
    })
    .await?;
    match taken {
        Some((taken, before)) => run(app, taken, &before).await.map(Some),
        None => Ok(None),
    }
}

/// `POST /v1/callbacks/{id}/dispatch`: `scheduled` or `failed` → dispatch now, synchronously.
pub async fn dispatch_now(app: &App, caller: &Caller, id: &str) -> ApiResult<Callback> {
    let taken = optimistic(move || async move {
        let before = load(app, &caller.organization_id, id).await?;
        match before.value.callback.status {
            CallbackStatus::Scheduled | CallbackStatus::Failed => take(app, &before, false)
                .await
                .map(|taken| (taken, before.value)),
            other => Err(ApiError::conflict(format!(
                "A {} callback cannot be dispatched",
                other.as_str()
            ))
            .into()),
        }
    })
    .await?;
    if let Err(err) = app.scheduler.unschedule(id).await {
        tracing::warn!(callback = %id, %err, "could not delete the schedule of a callback dispatched by hand");
    }
    let (taken, before) = taken;
    run(app, taken, &before).await
}

/// What the dispatch came to.
enum Outcome {
    Dispatched { session_id: String },
    Failed(String),
}

async fn deliver_dispatch(app: &App, stored: &StoredCallback) -> ApiResult<Outcome> {
    let callback = &stored.callback;
    let organization_id = &callback.organization_id;
    let table = app.store.as_ref();
    // The pinned version is delivered, as long as the flow still has an active ACTIVE version.
    let inactive = || Ok(Outcome::Failed(FLOW_INACTIVE.to_owned()));
    let Some(head) = store_flows::load_head(table, organization_id, &callback.flow).await? else {
        return inactive();
    };
    let Some(active_number) = head.value.active().map(|summary| summary.version) else {
        return inactive();
    };
    let active =
        store_flows::load_version(table, organization_id, &callback.flow, active_number).await?;
    let pinned = if active_number == callback.flow_version {
        active.clone()
    } else {
        store_flows::load_version(
            table,
            organization_id,
            &callback.flow,
            callback.flow_version,
        )
        .await?
    };
    let (Some(active), Some(pinned)) = (active, pinned) else {
        return inactive();
    };
    if !active.value.active {
        return inactive();
    }
    if callback
        .expires_at
        .is_some_and(|expires| expires <= app.clock.now())
    {
        return Ok(Outcome::Failed(EXPIRED.to_owned()));
    }
    let endpoints = subscribers(app, organization_id, EventType::CallbackDispatch).await?;
    if endpoints.is_empty() {
        return Ok(Outcome::Failed(NO_DISPATCH_TARGET.to_owned()));
    }
    let data = json!({ "callback": callback, "flow": FlowView::new(&head.value, pinned.value) });
    let event = Event::new(
        EventType::CallbackDispatch,
        stored.dispatch_event_id.clone(),
        app.clock.now(),
        data,
    );
    let deadline = delivery_deadline();
    let mut failure = String::new();
    for endpoint in &endpoints {
        // Out of time: the cause names the last failure actually seen.
        if Instant::now() >= deadline && !failure.is_empty() {
            break;
        }
        match deliver(app, endpoint, &event, deadline).await {
            Delivered::Accepted(body) => {
                let session_id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|answer| answer.get("session_id")?.as_str().map(str::to_owned))
                    .filter(|id| !id.is_empty() && id.chars().count() <= MAX_SESSION_ID)
                    .unwrap_or_else(|| ids::new_id("sess_", app.clock.now().as_millisecond()));
                return Ok(Outcome::Dispatched { session_id });
            }
            Delivered::Refused(last) => {
                failure = format!("WEBHOOK_FAILED: {last} from {}", endpoint.url)
            }
        }
    }
    Ok(Outcome::Failed(failure))
}

/// What the work in hand keeps for recording a dispatch after its delivery (the record is
/// retried through throttling until the deadline, so this is its time).
const RECORD_RESERVE: std::time::Duration = std::time::Duration::from_secs(3);

/// When delivering must end: 25 s from now at most (SPEC §4), and early enough that recording
/// still fits in the deadline of the request or invocation — measured from its start, so reads
/// before the delivery, however slow, cannot push the record past it.
fn delivery_deadline() -> Instant {
    (Instant::now() + DISPATCH_DEADLINE).min(
        crate::deadline::current()
            .checked_sub(RECORD_RESERVE)
            .unwrap_or_else(Instant::now),
    )
}

/// Delivers and records the end of a dispatch this dispatcher owns.
async fn run(
    app: &App,
    taken: Loaded<StoredCallback>,
    before: &StoredCallback,
) -> ApiResult<Callback> {
    let started = Instant::now();
    let outcome = match deliver_dispatch(app, &taken.value).await {
        Ok(outcome) => outcome,
        Err(err) => {
            // Nothing was delivered (the store failed while reading the flow or the endpoints):
            // hand the callback back as it was, so a retry need not wait out the lease.
            if let Err(release) = store::save(app.store.as_ref(), Some(&taken), before).await {
                tracing::warn!(callback = %before.callback.id, %release, "could not release a dispatch lease");
            }
            return Err(err);
        }
    };
    let now: Timestamp = app.clock.now();
    let mut after = taken.value.clone();
    after.lease_until_ms = None;
    after.callback.updated_at = now;
    let event = match outcome {
        Outcome::Dispatched { session_id } => {
            after.callback.status = CallbackStatus::Dispatched;
            after.callback.dispatched_at = Some(now);
            after.callback.created_session_id = Some(session_id);
            EventType::CallbackDispatched
        }
        Outcome::Failed(cause) => {
            after.callback.status = CallbackStatus::Failed;
            after.callback.failure_cause = Some(cause);
            EventType::CallbackFailed
        }
    };
    match store::save(app.store.as_ref(), Some(&taken), &after).await {
        Ok(_) => {}
        // Our lease ran out and another dispatcher took over: its record stands.
        Err(crate::store::StoreError::ConditionFailed) => {
            let current = load(app, &after.callback.organization_id, &after.callback.id).await?;
            return Ok(current.value.callback);
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(callback = %after.callback.id, status = after.callback.status.as_str(), "dispatch finished");
    // Within what is left of the synchronous route's time: the record is made, nothing may
    // delay the answer past the deadline.
    let deadline = (started + WHOLE_DISPATCH)
        .min(Instant::now() + LIFECYCLE_DEADLINE)
        .min(crate::deadline::current());
    let emitted = tokio::time::timeout_at(
        deadline,
        emit_until(
            app,
            &after.callback.organization_id,
            event,
            event_data(&after.callback),
            deadline,
        ),
    )
    .await;
    if emitted.is_err() {
        tracing::warn!(callback = %after.callback.id, "lifecycle event not sent in time");
    }
    Ok(after.callback)
}

/// What the in-process scheduler's timers run: the job, as the cloud's `dispatch` function does.
#[async_trait::async_trait]
impl JobRunner for App {
    async fn run_job(&self, job: &DispatchJob) {
        let deadline = tokio::time::Instant::now() + crate::deadline::DEFAULT_BUDGET;
        if let Err(err) = crate::deadline::within(deadline, run_job(self, job)).await {
            tracing::warn!(callback = %job.callback_id, error = %err.message, "in-process dispatch failed");
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Due entries read.
    pub examined: usize,
    /// Dispatches handed off (one per due callback; each runs elsewhere, and only one
    /// dispatcher of a callback can take it).
    pub handed_off: usize,
    /// Hand-offs that failed (the callback stays due: the next sweep tries again).
    pub errors: usize,
    /// Shards whose due entries were all read (a shard not finished resumes next time).
    pub shards_finished: usize,
}

/// Shards swept at once, hand-offs at once in each, and due entries read a page at a time:
/// 64 asynchronous invocations in flight hand off 100,000 callbacks in well under a minute.
const PARALLEL_SHARDS: usize = 8;
const HANDOFFS_PER_SHARD: usize = 8;
const SWEEP_PAGE: usize = 100;

/// The sweeper: finds callbacks more than 2 minutes overdue (a lost schedule) and those whose
/// dispatcher's lease ran out (a crashed dispatch), and hands each off to the dispatch invoker
/// — it never delivers itself, so one slow receiver cannot hold it up. Every shard of the due
/// index is swept each run, several at once, each resuming where the last run stopped (a
/// cursor per shard), so however many are due none starves. Runs may overlap: a callback
/// handed off twice is still dispatched once (taking it is one conditional write).
pub async fn sweep(app: &App, budget: std::time::Duration) -> ApiResult<SweepReport> {
    use futures_util::StreamExt;
    let until = Instant::now() + budget;
    let now_ms = app.clock.now().as_millisecond();
    let reports: Vec<ApiResult<SweepReport>> = futures_util::stream::iter(0..store::DUE_SHARDS)
        .map(|shard| sweep_shard(app, shard, now_ms, until))
        .buffer_unordered(PARALLEL_SHARDS)
        .collect()
        .await;
    let mut report = SweepReport::default();
    for shard in reports {
        let shard = shard?;
        report.examined += shard.examined;
        report.handed_off += shard.handed_off;
        report.errors += shard.errors;
        report.shards_finished += shard.shards_finished;
    }
    if report.examined > 0 {
        tracing::info!(
            examined = report.examined,
            handed_off = report.handed_off,
            errors = report.errors,
            shards_finished = report.shards_finished,
            "sweep finished"
        );
    }
    Ok(report)
}

async fn hand_off(
    app: &App,
    job: DispatchJob,
) -> (DispatchJob, Result<(), crate::scheduler::SchedulerError>) {
    let outcome = app.invoker.invoke(&job).await;
    (job, outcome)
}

async fn sweep_shard(app: &App, shard: u32, now_ms: i64, until: Instant) -> ApiResult<SweepReport> {
    use futures_util::StreamExt;
    let table = app.store.as_ref();
    let mut report = SweepReport::default();
    let started_at = store::sweep_cursor(table, shard).await?;
    let mut cursor = started_at.clone();
    loop {
        if Instant::now() >= until {
            store::save_sweep_cursor(table, shard, cursor.as_deref()).await?;
            return Ok(report);
        }
        let jobs = store::due(table, shard, now_ms, cursor.clone(), SWEEP_PAGE).await?;
        // A page's hand-offs, several at once (each is an API call to Lambda).
        let due: Vec<DispatchJob> = jobs.iter().map(|(_, job)| job.clone()).collect();
        let outcomes: Vec<(DispatchJob, Result<(), _>)> = futures_util::stream::iter(due)
            .map(|job| hand_off(app, job))
            .buffer_unordered(HANDOFFS_PER_SHARD)
            .collect()
            .await;
        for (job, outcome) in outcomes {
            report.examined += 1;
            match outcome {
                Ok(()) => report.handed_off += 1,
                Err(err) => {
                    report.errors += 1;
                    tracing::warn!(callback = %job.callback_id, %err, "sweeper could not hand off a dispatch");
                }
            }
        }
        if let Some((position, _)) = jobs.last() {
            cursor = Some(position.clone());
        }
        if jobs.len() < SWEEP_PAGE {
            // The shard's due range is read: the next run starts it over (nothing to write when
            // it already did: an idle sweep writes nothing).
            if started_at.is_some() {
                store::save_sweep_cursor(table, shard, None).await?;
            }
            report.shards_finished += 1;
            return Ok(report);
        }
        store::save_sweep_cursor(table, shard, cursor.as_deref()).await?;
    }
}

/// What [`rearm`] armed again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RearmReport {
    /// `scheduled` callbacks, armed at their `scheduled_at`.
    pub scheduled: usize,
    /// `dispatching` callbacks, armed at the end of their dispatcher's lease.
    pub dispatching: usize,
}

/// Due entries read at a time when re-arming.
const REARM_PAGE: usize = 1000;

/// For a process whose schedules live in it and died with the last one (the local server's
/// in-process timers): arms a schedule again for every `scheduled` callback, at its
/// `scheduled_at`, and for every `dispatching` one at the end of its lease, when a crashed
/// dispatch may be taken over. What fell due while no process ran fires at once. It reads only
/// the due index (each entry says when, and whether it is a lease), so it costs O(callbacks
/// waiting), whatever else the store holds.
pub async fn rearm(app: &App) -> ApiResult<RearmReport> {
    use futures_util::StreamExt;
    let shards: Vec<ApiResult<RearmReport>> = futures_util::stream::iter(0..store::DUE_SHARDS)
        .map(|shard| rearm_shard(app, shard))
        .buffer_unordered(PARALLEL_SHARDS)
        .collect()
        .await;
    let mut report = RearmReport::default();
    for shard in shards {
        let shard = shard?;
        report.scheduled += shard.scheduled;
        report.dispatching += shard.dispatching;
    }
    Ok(report)
}

async fn rearm_shard(app: &App, shard: u32) -> ApiResult<RearmReport> {
    let table = app.store.as_ref();
    let mut report = RearmReport::default();
    let mut after = None;
    loop {
        let waiting = store::waiting(table, shard, after, REARM_PAGE).await?;
        for (_, callback) in &waiting {
            if callback.leased {
                report.dispatching += 1;
            } else {
                report.scheduled += 1;
            }
            app.scheduler.schedule(&callback.job, callback.at).await?;
        }
        if waiting.len() < REARM_PAGE {
            return Ok(report);
        }
        after = waiting.last().map(|(position, _)| position.clone());
    }
}
