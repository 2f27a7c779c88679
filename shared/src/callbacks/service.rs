//! The callback use cases behind the routes of SPEC §4 (dispatch is in `dispatch.rs`).
//!
//! Store and scheduler are never half-updated: a create makes the schedule first and the item
//! second (a schedule without its item fires into nothing); cancel and reschedule change the
//! item first, conditionally, and the schedule second (a stale schedule fires into a callback
//! that is no longer due, which dispatch ignores; the sweeper catches one that never fires).

use serde::Serialize;
use serde_json::{Map, Value};

use super::input::{CallbackPatch, NewCallback, check_patch_times, read_patch};
use super::model::{Callback, CallbackStatus, ID_PREFIX, StoredCallback};
use super::store::{self, CallbackFilters};
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::{Failure, optimistic};
use crate::error::{ApiError, ApiResult};
use crate::fields::{Field, FieldReader};
use crate::flows::policies::Dedupe;
use crate::http::{check_if_match, etag_of};
use crate::ids;
use crate::page::PageScope;
use crate::scheduler::{DispatchJob, Job};
use crate::store::Loaded;
use crate::webhooks::EventType;

pub fn not_found() -> ApiError {
    ApiError::not_found("Callback")
}

pub(crate) async fn load(
    app: &App,
    organization_id: &str,
    id: &str,
) -> ApiResult<Loaded<StoredCallback>> {
    if !ids::is_id(id, ID_PREFIX) {
        return Err(not_found());
    }
    store::load(app.store.as_ref(), organization_id, id)
        .await?
        .ok_or_else(not_found)
}

/// Why a new callback's write failed. Its id is fresh, so a condition that fails is one of its
/// guards or its number's uniqueness item.
enum CreateFailure {
    Store(crate::store::StoreError),
    /// A condition failed: the number's holder, or a guard.
    Condition {
        organization_id: String,
        number: Option<String>,
    },
}

fn guarded(err: crate::store::StoreError, stored: &StoredCallback) -> CreateFailure {
    match err {
        crate::store::StoreError::ConditionFailed => CreateFailure::Condition {
            organization_id: stored.callback.organization_id.clone(),
            number: stored
                .holds_number
                .then(|| stored.callback.to_number.clone()),
        },
        other => CreateFailure::Store(other),
    }
}

impl CreateFailure {
    /// The answer: 409 with the callback that holds the number (SPEC §7), or [`GUARD_FAILED`].
    async fn resolve(self, app: &App) -> ApiError {
        match self {
            Self::Store(err) => err.into(),
            Self::Condition {
                organization_id,
                number: Some(number),
            } => match store::number_holder(app.store.as_ref(), &organization_id, &number).await {
                Ok(Some(holder)) => number_taken(&number, holder),
                Ok(None) => ApiError::conflict(GUARD_FAILED),
                Err(err) => err.into(),
            },
            Self::Condition { number: None, .. } => ApiError::conflict(GUARD_FAILED),
        }
    }
}

/// 409 for a second active callback to a number under `dedupe: one_active_per_number`.
pub(crate) fn number_taken(number: &str, holder: String) -> ApiError {
    let mut err = ApiError::conflict(format!(
        "{number} already has an active callback ({holder}); the flow allows one per number"
    ));
    err.existing_callback_id = Some(holder);
    err
}

/// The job that dispatches `callback` (its schedule, or "now").
pub fn job_of(callback: &Callback) -> Job {
    Job::Dispatch(DispatchJob {
        callback_id: callback.id.clone(),
        organization_id: callback.organization_id.clone(),
    })
}

/// Creates a callback for `organization_id` (from an API key, or from a trigger URL).
pub async fn create(app: &App, organization_id: &str, new: NewCallback) -> ApiResult<Callback> {
    create_guarded(app, organization_id, new, Vec::new()).await
}

/// What a create answers (409) when one of its guards no longer held.
pub const GUARD_FAILED: &str = "What this callback was created under changed meanwhile; retry";

/// [`create`], on condition that `guards` (checks of other items) still hold when the
/// callback is written: one transaction, so nothing that changes them meanwhile (a trigger URL
/// revoked while it is being called) can be overtaken. A guard that fails answers 409
/// [`GUARD_FAILED`], which callers turn into their own answer.
pub async fn create_guarded(
    app: &App,
    organization_id: &str,
    new: NewCallback,
    guards: Vec<crate::store::Write>,
) -> ApiResult<Callback> {
    if !ids::is_flow_slug(&new.flow) {
        return Err(ApiError::not_found("Flow"));
    }
    let active = crate::flows::service::active_version(app, organization_id, &new.flow)
        .await?
        .ok_or_else(|| ApiError::conflict("The flow has no ACTIVE version: publish it first"))?;
    if !active.active {
        return Err(ApiError::conflict(
            "The flow is inactive and accepts no new callbacks",
        ));
    }
    let now = app.clock.now();
    if let Some(suppression) =
        crate::suppressions::in_force(app, organization_id, &new.to_number, now).await?
    {
        return Err(ApiError::conflict(format!(
            "{} is on the do-not-call list ({}): no callback can be scheduled to it",
            suppression.number, suppression.source
        )));
    }
    let from_number = new.from_number.or_else(|| {
        active
            .entry_points
            .iter()
            .find_map(|p| p.entry_number.clone())
    });
    // The calling window moves a time outside it to the next opening (SPEC §7).
    let asked = new.scheduled_at.unwrap_or(now);
    let scheduled_at = match &active.calling_window {
        Some(window) => window.next_opening(asked, new.time_zone.as_deref()),
        None => asked,
    };
    if let Some(expires) = new.expires_at
        && scheduled_at >= expires
    {
        return Err(ApiError::invalid_field(
            "expires_at",
            format!(
                "is before the calling window's next opening ({}): the callback could never be \
                 dispatched",
                crate::time::format_timestamp(scheduled_at)
            ),
        ));
    }
    let scheduled_later =
        (scheduled_at != asked || new.scheduled_at.is_some()).then_some(scheduled_at);
    let callback = Callback {
        id: ids::new_id(ID_PREFIX, now.as_millisecond()),
        organization_id: organization_id.to_owned(),
        flow: new.flow,
        flow_version: active.version,
        source_session_id: new.source_session_id,
        created_session_id: None,
        agent_id: new.agent_id,
        phone_number_id: new.phone_number_id,
        to_number: new.to_number,
        from_number,
        scheduled_at,
        expires_at: new.expires_at,
        status: CallbackStatus::Scheduled,
        reason: new.reason,
        instructions: new.instructions,
        summary: new.summary,
        pipeline_config: new.pipeline_config,
        metadata: new.metadata,
        failure_cause: None,
        attempted_at: None,
        dispatched_at: None,
        cancelled_at: None,
        created_at: now,
        updated_at: now,
        cancel_reason: None,
        attempt: 1,
        max_attempts: active.retry_policy.max_attempts,
        requested_at: Some(asked),
        time_zone: new.time_zone,
        outcome: None,
        outcome_at: None,
        attempts: Vec::new(),
    };
    let mut stored = StoredCallback {
        callback: callback.clone(),
        lease_until_ms: None,
        dispatch_event_id: None,
        unannounced: false,
        holds_number: active.dedupe == Dedupe::OneActivePerNumber,
    };
    let table = app.store.as_ref();
    if stored.holds_number {
        // A callback scheduled to the number by a flow without the rule holds no uniqueness
        // item, but counts (SPEC §7): the number's scheduled entries show it.
        let filters = store::CallbackFilters::default();
        let (scheduled, _) = store::scheduled_ids(
            table,
            organization_id,
            Some(&callback.to_number),
            &filters,
            None,
            1,
        )
        .await?;
        if let Some(existing) = scheduled.into_iter().next() {
            return Err(number_taken(&callback.to_number, existing));
        }
    }
    let job = job_of(&callback);
    match scheduled_later {
        Some(at) => {
            app.scheduler.schedule(&job, at).await?;
            let events = [EventType::CallbackScheduled];
            if let Err(err) = save_new(app, &stored, &events, guards).await {
                if let Err(cleanup) = app.scheduler.unschedule(&callback.id).await {
                    // The orphan schedule fires into a missing callback, which dispatch ignores.
                    tracing::warn!(callback = %callback.id, %cleanup, "could not remove the schedule of a failed create");
                }
                return Err(err);
            }
        }
        None => {
            // Written before the hand-off and removed if it fails: announced by its first
            // change instead (see `StoredCallback::unannounced`).
            stored.unannounced = true;
            let rev = save_new(app, &stored, &[], guards).await?;
            if let Err(err) = app.invoker.invoke(&job).await {
                let written = Loaded { value: stored, rev };
                if let Err(cleanup) = store::remove(table, &written).await {
                    tracing::warn!(callback = %callback.id, %cleanup, "could not roll back a callback whose dispatch could not start");
                }
                return Err(err.into());
            }
        }
    }
    crate::metrics::callback_created();
    Ok(callback)
}

/// Writes a new callback (see [`store::save_guarded`]). When the store's answer is lost (it
/// timed out, or kept failing), the write may still have landed: the callback is looked for
/// before the create fails, so a caller who retries with its `Idempotency-Key` (whose claim a
/// failure releases) never gets a second callback for a first that exists.
async fn save_new(
    app: &App,
    stored: &StoredCallback,
    events: &[EventType],
    guards: Vec<crate::store::Write>,
) -> ApiResult<u64> {
    let table = app.store.as_ref();
    let err = match store::save_guarded(table, stored, events, guards).await {
        Ok(rev) => return Ok(rev),
        Err(err) => err,
    };
    if matches!(err, crate::store::StoreError::Unavailable(_)) {
        let callback = &stored.callback;
        if let Ok(Some(found)) = store::load(table, &callback.organization_id, &callback.id).await {
            tracing::info!(callback = %callback.id, "a create whose answer was lost had been written");
            return Ok(found.rev);
        }
    }
    Err(guarded(err, stored).resolve(app).await)
}

pub async fn get(app: &App, caller: &Caller, id: &str) -> ApiResult<Callback> {
    Ok(load(app, &caller.organization_id, id).await?.value.callback)
}

#[derive(Debug, Serialize)]
pub struct CallbackList {
    pub callbacks: Vec<Callback>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

pub async fn list(
    app: &App,
    caller: &Caller,
    filters: CallbackFilters,
    limit: u32,
    page_token: Option<&str>,
) -> ApiResult<CallbackList> {
    let scope = PageScope::new("callbacks", &caller.organization_id)
        .filter("status", filters.status.map(CallbackStatus::as_str))
        .filter("source_session_id", filters.source_session_id.as_deref())
        .filter("flow", filters.flow.as_deref());
    let tokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let (callbacks, next) = store::list_page(
        app.store.as_ref(),
        &caller.organization_id,
        &filters,
        after,
        limit as usize,
    )
    .await?;
    Ok(CallbackList {
        callbacks,
        next_page_token: next.map(|position| tokens.issue(&scope, &position, now)),
    })
}

fn apply(callback: &mut Callback, patch: &CallbackPatch) {
    fn set<T: Clone>(target: &mut Option<T>, field: &Field<T>) {
        match field {
            Field::Set(value) => *target = Some(value.clone()),
            Field::Null => *target = None,
            Field::Absent => {}
        }
    }
    if let Some(at) = patch.scheduled_at {
        callback.scheduled_at = at;
    }
    if let Some(number) = &patch.to_number {
        callback.to_number = number.clone();
    }
    set(&mut callback.expires_at, &patch.expires_at);
    set(&mut callback.from_number, &patch.from_number);
    set(&mut callback.reason, &patch.reason);
    set(&mut callback.instructions, &patch.instructions);
    set(&mut callback.summary, &patch.summary);
    set(&mut callback.metadata, &patch.metadata);
    set(&mut callback.pipeline_config, &patch.pipeline_config);
    set(&mut callback.time_zone, &patch.time_zone);
}

/// `PATCH /v1/callbacks/{id}`: while `scheduled`; the schedule moves with it.
pub async fn update(
    app: &App,
    caller: &Caller,
    id: &str,
    body: Map<String, Value>,
    if_match: Option<&str>,
) -> ApiResult<Callback> {
    let patch = read_patch(body)?;
    let patch = &patch;
    let updated = optimistic(move || async move {
        let before = load(app, &caller.organization_id, id).await?;
        check_if_match(if_match, &etag_of(&before.value.callback))?;
        if before.value.callback.status != CallbackStatus::Scheduled {
            return Err(ApiError::conflict(format!(
                "Only a scheduled callback can be changed; this one is {}",
                before.value.callback.status.as_str()
            ))
            .into());
        }
        let mut after = before.value.clone();
        apply(&mut after.callback, patch);
        check_patch_times(
            app.clock.now(),
            after.callback.scheduled_at,
            after.callback.expires_at,
            patch,
        )?;
        let now = app.clock.now();
        after.callback.updated_at = now;
        if patch.scheduled_at.is_some() {
            after.callback.requested_at = patch.scheduled_at;
        }
        let new_number = after.callback.to_number != before.value.callback.to_number;
        if new_number
            && let Some(suppression) = crate::suppressions::in_force(
                app,
                &caller.organization_id,
                &after.callback.to_number,
                now,
            )
            .await?
        {
            return Err(ApiError::conflict(format!(
                "{} is on the do-not-call list ({})",
                suppression.number, suppression.source
            ))
            .into());
        }
        let table = app.store.as_ref();
        match store::save(table, Some(&before), &after, &[]).await {
            Err(crate::store::StoreError::ConditionFailed) if new_number && after.holds_number => {
                // Our revision, or the new number's uniqueness item: only the latter is final.
                let number = &after.callback.to_number;
                match store::number_holder(table, &caller.organization_id, number).await? {
                    Some(holder) if holder != after.callback.id => {
                        return Err(number_taken(number, holder).into());
                    }
                    _ => return Err(Failure::Raced),
                }
            }
            other => {
                other?;
            }
        }
        Ok::<_, Failure>((before.value.callback.scheduled_at, after.callback))
    })
    .await;
    let (previous_at, callback) = updated?;
    if callback.scheduled_at != previous_at
        && let Err(err) = app
            .scheduler
            .reschedule(&job_of(&callback), callback.scheduled_at)
            .await
    {
        // The item is the truth: an early stale schedule is ignored by dispatch (not yet due),
        // and the sweeper dispatches the callback if no schedule fires at its new time.
        tracing::warn!(callback = %callback.id, %err, "the schedule did not move; the sweeper will cover it");
    }
    Ok(callback)
}

/// `POST /v1/callbacks/{id}/cancel`.
pub async fn cancel(
    app: &App,
    caller: &Caller,
    id: &str,
    body: Map<String, Value>,
) -> ApiResult<Callback> {
    let mut fields = FieldReader::new(body);
    let reason = fields
        .string("reason", super::input::MAX_REASON)
        .into_option();
    fields.finish()?;
    let (callback, _) = cancel_one(app, &caller.organization_id, id, reason, |_| true).await?;
    Ok(callback)
}

/// Cancels one callback, as its cancel route does: `scheduled` → `cancelled` with its event in
/// one conditional write, then its schedule deleted. Answers it and whether this call cancelled
/// it (an already cancelled one is answered as it is). `matches` is checked on the callback as
/// read (bulk cancel's filters); one that does not match is answered unchanged.
pub(crate) async fn cancel_one(
    app: &App,
    organization_id: &str,
    id: &str,
    reason: Option<String>,
    matches: impl Fn(&Callback) -> bool,
) -> ApiResult<(Callback, bool)> {
    let reason = &reason;
    let matches = &matches;
    let (callback, changed) = optimistic(move || async move {
        let before = load(app, organization_id, id).await?;
        if !matches(&before.value.callback) {
            return Ok((before.value.callback, false));
        }
        match before.value.callback.status {
            CallbackStatus::Cancelled => return Ok((before.value.callback, false)),
            CallbackStatus::Scheduled => {}
            other => {
                return Err(ApiError::conflict(format!(
                    "A {} callback cannot be cancelled",
                    other.as_str()
                ))
                .into());
            }
        }
        let now = app.clock.now();
        let mut after = before.value.clone();
        after.callback.status = CallbackStatus::Cancelled;
        after.callback.cancelled_at = Some(now);
        after.callback.cancel_reason = reason.clone();
        after.callback.updated_at = now;
        let events = [EventType::CallbackCancelled];
        store::save(app.store.as_ref(), Some(&before), &after, &events).await?;
        Ok((after.callback, true))
    })
    .await?;
    if changed && let Err(err) = app.scheduler.unschedule(&callback.id).await {
        // A schedule that still fires finds a cancelled callback and does nothing.
        tracing::warn!(callback = %callback.id, %err, "could not delete the schedule of a cancelled callback");
    }
    Ok((callback, changed))
}
