//! Dispatch (SPEC §4): move a due callback `scheduled → dispatching` with one conditional write
//! (so of concurrent dispatchers exactly one wins), deliver `callback.dispatch` to the
//! organization's endpoints, record `dispatched` or `failed` with its lifecycle event in the
//! same transaction (the outbox sends it later), and log the deliveries made.
//! The scheduler's invocations, the sweeper and `POST …/dispatch` all come through here.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::time::Instant;

use super::model::{Callback, CallbackStatus, StoredCallback};
use super::service::load;
use super::store;
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::{Failure, optimistic};
use crate::error::{ApiError, ApiResult};
use crate::flows::model::FlowView;
use crate::flows::store as store_flows;
use crate::ids;
use crate::scheduler::DispatchJob;
use crate::store::Loaded;
use crate::webhooks::delivery::{DISPATCH_DEADLINE, Delivered, Event, deliver};
use crate::webhooks::{EventType, subscribers, worker};

/// How long a dispatcher owns a `dispatching` callback: longer than a whole dispatch (25 s) with
/// a wide margin, short enough that a crashed dispatcher's callback is retried soon.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);
/// A schedule may fire this much before `scheduled_at` and still count (clock skew); earlier,
/// it is a stale schedule of a callback that was moved later.
const EARLY_TOLERANCE: SignedDuration = SignedDuration::from_secs(30);
/// Characters (not bytes) of a receiver's `session_id` Flowline keeps (SPEC §4).
const MAX_SESSION_ID: usize = 255;

pub const FLOW_INACTIVE: &str = "FLOW_INACTIVE";
pub const EXPIRED: &str = "EXPIRED";
pub const NO_DISPATCH_TARGET: &str = "NO_DISPATCH_TARGET";
pub const SUPPRESSED: &str = "SUPPRESSED";

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
    let rev = store::save(app.store.as_ref(), Some(before), &after, &[]).await?;
    after.unannounced = false;
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
        Some((taken, before)) => run(app, taken, &before, By::Schedule).await.map(Some),
        None => Ok(None),
    }
}

/// `POST /v1/callbacks/{id}/dispatch`: `scheduled` or `failed` → dispatch now, synchronously.
pub async fn dispatch_now(app: &App, caller: &Caller, id: &str) -> ApiResult<Callback> {
    let taken = optimistic(move || async move {
        let before = load(app, &caller.organization_id, id).await?;
        match before.value.callback.status {
            CallbackStatus::Scheduled | CallbackStatus::Failed => {
                match take(app, &before, false).await {
                    Ok(taken) => Ok((taken, before.value)),
                    // A failed callback under `one_active_per_number` takes its number again:
                    // another callback may hold it now.
                    Err(Failure::Raced) if before.value.holds_number => {
                        let callback = &before.value.callback;
                        match store::number_holder(
                            app.store.as_ref(),
                            &callback.organization_id,
                            &callback.to_number,
                        )
                        .await?
                        {
                            Some(holder) if holder != callback.id => {
                                Err(super::service::number_taken(&callback.to_number, holder)
                                    .into())
                            }
                            _ => Err(Failure::Raced),
                        }
                    }
                    Err(other) => Err(other),
                }
            }
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
    run(app, taken, &before, By::Hand).await
}

/// Who dispatches: a schedule (or the sweeper), which the calling window holds back, or a
/// caller of `POST …/dispatch`, who asked for now (SPEC §7: "a manual dispatch excepted").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Schedule,
    Hand,
}

/// What the dispatch came to.
enum Outcome {
    Dispatched {
        session_id: String,
    },
    Failed(String),
    /// Due outside its calling window: back to `scheduled`, at the next opening.
    Moved(Timestamp),
}

/// The tries of one endpoint in a dispatch, for the delivery log.
struct Tries {
    endpoint: crate::webhooks::Endpoint,
    attempts: Vec<crate::webhooks::delivery::AttemptRecord>,
}

/// A dispatch's deliveries: the event sent and each endpoint's tries.
#[derive(Default)]
struct Sent {
    event: Option<Event>,
    tries: Vec<Tries>,
}

async fn deliver_dispatch(
    app: &App,
    stored: &StoredCallback,
    by: By,
    sent: &mut Sent,
) -> ApiResult<Outcome> {
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
    let now = app.clock.now();
    if callback.expires_at.is_some_and(|expires| expires <= now) {
        return Ok(Outcome::Failed(EXPIRED.to_owned()));
    }
    // Do-not-call is checked at every dispatch: a number may have been suppressed since.
    if crate::suppressions::in_force(app, organization_id, &callback.to_number, now)
        .await?
        .is_some()
    {
        return Ok(Outcome::Failed(SUPPRESSED.to_owned()));
    }
    if by == By::Schedule
        && let Some(window) = &pinned.value.calling_window
    {
        // A schedule may fire a little early (EARLY_TOLERANCE): the callback's own time counts.
        let due = now.max(callback.scheduled_at);
        let opening = window.next_opening(due, callback.time_zone.as_deref());
        if opening > due {
            return Ok(
                if callback
                    .expires_at
                    .is_some_and(|expires| opening >= expires)
                {
                    Outcome::Failed(EXPIRED.to_owned())
                } else {
                    Outcome::Moved(opening)
                },
            );
        }
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
    sent.event = Some(event.clone());
    for endpoint in &endpoints {
        // Out of time: the cause names the last failure actually seen.
        if Instant::now() >= deadline && !failure.is_empty() {
            break;
        }
        let Delivered {
            accepted,
            last_failure,
            attempts,
        } = deliver(app, endpoint, &event, deadline).await;
        sent.tries.push(Tries {
            endpoint: endpoint.clone(),
            attempts,
        });
        match accepted {
            Some(body) => {
                let session_id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|answer| answer.get("session_id")?.as_str().map(str::to_owned))
                    .filter(|id| !id.is_empty() && id.chars().count() <= MAX_SESSION_ID)
                    .unwrap_or_else(|| ids::new_id("sess_", app.clock.now().as_millisecond()));
                return Ok(Outcome::Dispatched { session_id });
            }
            None => failure = format!("WEBHOOK_FAILED: {last_failure} from {}", endpoint.url),
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

/// Delivers and records the end of a dispatch this dispatcher owns: the callback's new state
/// and its lifecycle event in one transaction, then the log of the deliveries made.
async fn run(
    app: &App,
    taken: Loaded<StoredCallback>,
    before: &StoredCallback,
    by: By,
) -> ApiResult<Callback> {
    let mut sent = Sent::default();
    let outcome = match deliver_dispatch(app, &taken.value, by, &mut sent).await {
        Ok(outcome) => outcome,
        Err(err) => {
            // Nothing was delivered (the store failed while reading the flow or the endpoints):
            // hand the callback back as it was, so a retry need not wait out the lease.
            if let Err(release) = store::save(app.store.as_ref(), Some(&taken), before, &[]).await {
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
        Outcome::Moved(opening) => {
            after.callback.status = CallbackStatus::Scheduled;
            after.callback.scheduled_at = opening;
            after.dispatch_event_id = None;
            EventType::CallbackRescheduled
        }
    };
    let moved_to =
        (after.callback.status == CallbackStatus::Scheduled).then_some(after.callback.scheduled_at);
    let recorded = store::save(app.store.as_ref(), Some(&taken), &after, &[event]).await;
    log_deliveries(app, &after.callback.organization_id, &sent).await;
    match recorded {
        Ok(_) => {}
        // Our lease ran out and another dispatcher took over: its record stands.
        Err(crate::store::StoreError::ConditionFailed) => {
            let current = load(app, &after.callback.organization_id, &after.callback.id).await?;
            return Ok(current.value.callback);
        }
        Err(err) => return Err(err.into()),
    }
    // The item first, then its schedule; the sweeper dispatches it if the schedule is lost.
    if let Some(opening) = moved_to
        && let Err(err) = app
            .scheduler
            .schedule(&super::service::job_of(&after.callback), opening)
            .await
    {
        tracing::warn!(callback = %after.callback.id, %err, "no schedule at the window's opening; the sweeper will cover it");
    }
    tracing::info!(callback = %after.callback.id, status = after.callback.status.as_str(), "dispatch finished");
    crate::metrics::dispatch_finished(
        after.callback.status.as_str(),
        after.callback.failure_cause.as_deref(),
        after.callback.scheduled_at,
        after.callback.dispatched_at,
    );
    Ok(after.callback)
}

/// The delivery log of a dispatch's `callback.dispatch` (SPEC §8). Best effort, within what is
/// left of the work's time: the log is for the customer's eyes, the callback's record is the
/// truth, and the synchronous route must answer in time.
async fn log_deliveries(app: &App, organization_id: &str, sent: &Sent) {
    let Some(event) = &sent.event else { return };
    if sent.tries.iter().all(|tries| tries.attempts.is_empty()) {
        return;
    }
    let logged = async {
        worker::keep_dispatch_event(app, organization_id, event).await?;
        let logs = sent.tries.iter().map(|tries| {
            worker::log_dispatch(
                app,
                organization_id,
                &tries.endpoint,
                event,
                &tries.attempts,
            )
        });
        for outcome in futures_util::future::join_all(logs).await {
            outcome?;
        }
        Ok::<(), ApiError>(())
    };
    match tokio::time::timeout_at(crate::deadline::current(), logged).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(error = %err.message, "the deliveries of a dispatch could not be logged")
        }
        Err(_) => tracing::warn!("the deliveries of a dispatch were not logged in time"),
    }
}
