//! `POST /v1/callbacks/{id}/outcome` (SPEC §7): the agent runtime says how the call went. The
//! outcome is recorded on the callback and in its `attempts`; an outcome the flow's
//! `retry_policy` retries sends the callback back to `scheduled` for its next attempt; an
//! `opt_out` puts the number on the do-not-call list and cancels its other scheduled callbacks.
//!
//! Everything an outcome changes is one conditional write on the callback's revision (with the
//! events, the suppression and the number's uniqueness item in the same transaction), so an
//! outcome posted twice, or two posted at once, are recorded once: the second finds the attempt
//! already has its outcome (409), and `max_attempts` holds exactly.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::model::{Attempt, Callback, CallbackStatus, StoredCallback};
use super::service::{cancel_one, job_of, load};
use super::store::{self, CallbackFilters};
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::{Failure, optimistic};
use crate::error::{ApiError, ApiResult};
use crate::fields::{Field, FieldReader};
use crate::flows::policies::{CALL_OUTCOMES, CallOutcome};
use crate::flows::store as store_flows;
use crate::store::StoreError;
use crate::suppressions::{self, Suppression};
use crate::webhooks::EventType;

/// Characters of `session_id` and `detail` kept (SPEC §7).
const MAX_SESSION_ID: usize = 255;
const MAX_DETAIL: usize = 500;
/// Callbacks cancelled at once by an opt-out's cascade, and read a page at a time.
const CASCADE_AT_ONCE: usize = 8;
const CASCADE_PAGE: usize = 100;

/// An outcome as posted.
struct Reported {
    outcome: CallOutcome,
    session_id: Option<String>,
    detail: Option<String>,
}

fn read(body: Map<String, Value>) -> ApiResult<Reported> {
    let mut fields = FieldReader::new(body);
    let outcome = match fields.choice::<CallOutcome>("outcome", CALL_OUTCOMES) {
        Field::Set(outcome) => Some(outcome),
        _ => {
            if !fields.has_problem("outcome") {
                fields.problem("outcome", "is required");
            }
            None
        }
    };
    let session_id = fields.string("session_id", MAX_SESSION_ID).into_option();
    let detail = fields.string("detail", MAX_DETAIL).into_option();
    fields.finish()?;
    Ok(Reported {
        outcome: outcome.expect("finish refuses a body without an outcome"),
        session_id,
        detail,
    })
}

/// What recording an outcome came to.
struct Recorded {
    callback: Callback,
    /// The next attempt's time, when the outcome is retried.
    retry_at: Option<Timestamp>,
}

pub async fn report(
    app: &App,
    caller: &Caller,
    id: &str,
    body: Map<String, Value>,
) -> ApiResult<Callback> {
    let reported = read(body)?;
    let reported = &reported;
    let organization_id = &caller.organization_id;
    let recorded = optimistic(move || async move {
        let before = load(app, organization_id, id).await?;
        record(app, &before, reported).await
    })
    .await?;
    let callback = recorded.callback;
    // The item first, then its schedule; the sweeper dispatches it if the schedule is lost.
    if let Some(at) = recorded.retry_at
        && let Err(err) = app.scheduler.schedule(&job_of(&callback), at).await
    {
        tracing::warn!(callback = %callback.id, %err, "no schedule for the retry; the sweeper will cover it");
    }
    if reported.outcome == CallOutcome::OptOut {
        cancel_the_others(app, &callback).await;
    }
    Ok(callback)
}

async fn record(
    app: &App,
    before: &crate::store::Loaded<StoredCallback>,
    reported: &Reported,
) -> Result<Recorded, Failure> {
    let callback = &before.value.callback;
    if callback.status != CallbackStatus::Dispatched {
        return Err(ApiError::conflict(format!(
            "Only a dispatched callback takes an outcome; this one is {}",
            callback.status.as_str()
        ))
        .into());
    }
    if let Some(last) = callback
        .attempts
        .last()
        .filter(|last| last.attempt == callback.attempt)
    {
        return Err(ApiError::conflict(format!(
            "Attempt {} already has its outcome ({})",
            last.attempt,
            last.outcome.as_str()
        ))
        .into());
    }
    let table = app.store.as_ref();
    let now = app.clock.now();
    // The policies of the callback's pinned version, as they are now (SPEC §7).
    let version = store_flows::load_version(
        table,
        &callback.organization_id,
        &callback.flow,
        callback.flow_version,
    )
    .await?
    .map(|loaded| loaded.value);
    let (policy, window) = version
        .map(|version| (version.retry_policy, version.calling_window))
        .unwrap_or_default();

    let mut after = before.value.clone();
    after.callback.outcome = Some(reported.outcome);
    after.callback.outcome_at = Some(now);
    after.callback.updated_at = now;
    after.callback.attempts.push(Attempt {
        attempt: callback.attempt,
        dispatched_at: callback.dispatched_at,
        created_session_id: callback.created_session_id.clone(),
        outcome: reported.outcome,
        outcome_at: now,
        session_id: reported.session_id.clone(),
        detail: reported.detail.clone(),
    });
    let mut also = Vec::new();
    if reported.outcome == CallOutcome::OptOut {
        let suppression = Suppression {
            number: callback.to_number.clone(),
            reason: reported.detail.clone(),
            source: format!("opt_out:{}", callback.id),
            created_at: now,
            expires_at: None,
        };
        also.push(suppressions::put_write(
            &callback.organization_id,
            &suppression,
        )?);
    }

    let next = callback.attempt + 1;
    let retry_at = (policy.retry_on.contains(&reported.outcome)
        && callback.attempt < callback.max_attempts)
        .then(|| {
            let asked = now + policy.delay_before(next);
            let at = window.as_ref().map_or(asked, |w| {
                w.next_opening(asked, callback.time_zone.as_deref())
            });
            (asked, at)
        })
        // A retry that could only come after the callback expires is no retry.
        .filter(|(_, at)| callback.expires_at.is_none_or(|expires| *at < expires));

    let outcome_only = [EventType::CallbackOutcome];
    if let Some((asked, at)) = retry_at {
        let mut retried = after.clone();
        retried.callback.status = CallbackStatus::Scheduled;
        retried.callback.attempt = next;
        retried.callback.scheduled_at = at;
        retried.callback.requested_at = Some(asked);
        retried.callback.failure_cause = None;
        retried.lease_until_ms = None;
        retried.dispatch_event_id = None;
        let events = [EventType::CallbackOutcome, EventType::CallbackRescheduled];
        match store::save_with(table, Some(before), &retried, &events, also.clone()).await {
            Ok(_) => {
                return Ok(Recorded {
                    callback: retried.callback,
                    retry_at: Some(at),
                });
            }
            // Under `one_active_per_number`, another callback to the number may have become
            // active meanwhile: the outcome is recorded, without a retry.
            Err(StoreError::ConditionFailed) if retried.holds_number => {
                let holder =
                    store::number_holder(table, &callback.organization_id, &callback.to_number)
                        .await?;
                if holder.is_none_or(|holder| holder == callback.id) {
                    return Err(Failure::Raced);
                }
                tracing::info!(callback = %callback.id, "no retry: another callback to the number is active");
            }
            Err(err) => return Err(err.into()),
        }
    }
    store::save_with(table, Some(before), &after, &outcome_only, also).await?;
    Ok(Recorded {
        callback: after.callback,
        retry_at: None,
    })
}

/// An opt-out cancels the organization's other scheduled callbacks to the number (SPEC §7).
/// After the outcome's write, best effort: one it misses fails with `SUPPRESSED` at dispatch.
async fn cancel_the_others(app: &App, opted_out: &Callback) {
    use futures_util::StreamExt;
    let organization_id = &opted_out.organization_id;
    let number = opted_out.to_number.as_str();
    let mut after = None;
    loop {
        let page = store::scheduled_ids(
            app.store.as_ref(),
            organization_id,
            Some(number),
            &CallbackFilters::default(),
            after,
            CASCADE_PAGE,
        )
        .await;
        let (ids, next) = match page {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(callback = %opted_out.id, %err, "an opt-out could not list the number's other callbacks");
                return;
            }
        };
        let others: Vec<String> = ids.into_iter().filter(|id| *id != opted_out.id).collect();
        futures_util::stream::iter(others)
            .for_each_concurrent(CASCADE_AT_ONCE, |id: String| async move {
                let reason = Some("opt_out".to_owned());
                if let Err(err) = cancel_one(app, organization_id, &id, reason, |_| true).await {
                    tracing::warn!(callback = %id, error = %err.message, "an opt-out could not cancel a callback to the number");
                }
            })
            .await;
        match next {
            Some(position) => after = Some(position),
            None => return,
        }
    }
}
