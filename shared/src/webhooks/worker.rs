//! The work that follows a change (SPEC §8), done by the cloud's `deliver` function for each
//! outbox record of the table's stream, by the `dispatch` function for each retry schedule,
//! and locally by the relay and the in-process timers:
//!
//! - **fan-out**: an event becomes one delivery per subscribed endpoint, each tried once at
//!   once;
//! - **retries**: a lifecycle delivery without a 2xx is tried again about 5 s, 5 min, 30 min,
//!   2 h, 5 h, 10 h and 10 h later (±20 %), each try a one-time schedule, then marked `failed`;
//!   every try carries the event's id as `webhook-id`;
//! - **order after an outage**: while an endpoint is failing, each try first re-sends its
//!   oldest waiting delivery; once one gets through, the endpoint's backlog is sent oldest
//!   first (a drain), so a receiver that was down gets what it missed in the order of first
//!   tries — and a single event it refuses cannot hold the others back, since each still has
//!   its own tries;
//! - **health**: an endpoint whose every try failed for 3 days is disabled, and
//!   `webhook.disabled` is sent to the organization's other endpoints subscribed to it;
//! - **redelivery**: one more try of one delivery, asked for by the customer.

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

use super::deliveries::{self, Delivery, DeliveryStatus};
use super::delivery::{ATTEMPT_TIMEOUT, AttemptRecord, Event, try_once};
use super::outbox::{self, Outboxed, Work};
use super::{Endpoint, EndpointStatus, EndpointView, EventType};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::scheduler::{Job, RetryJob};
use crate::store::{Expect, Key, Loaded, StoreError, Write};

/// The pauses after each failed try of a lifecycle delivery: 8 tries in all (SPEC §8).
pub const RETRY_DELAYS: [SignedDuration; 7] = [
    SignedDuration::from_secs(5),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(30),
    SignedDuration::from_hours(2),
    SignedDuration::from_hours(5),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
];
/// Each pause is stretched or shrunk by up to this fraction, so retries of many deliveries
/// that failed together do not arrive together.
pub const JITTER: f64 = 0.2;
/// An endpoint whose every try failed this long is disabled.
pub const DISABLE_AFTER: SignedDuration = SignedDuration::from_hours(72);
/// A drain gives up (the endpoint is down again) after this many failures in a row.
const DRAIN_FAILURES_IN_A_ROW: u32 = 3;
/// Deliveries a drain reads at a time.
const DRAIN_PAGE: usize = 25;
/// What a drain keeps of its invocation's time to queue its continuation.
const DRAIN_RESERVE: std::time::Duration = std::time::Duration::from_secs(8);

/// However the jitter falls, the last try is never earlier than this after the first: an
/// endpoint down for a day loses nothing.
pub const RETRY_SPAN: SignedDuration = SignedDuration::from_hours(24);

/// The pause before try `slot + 1`, after try `slot` failed, with jitter.
pub fn retry_delay(slot: u32) -> Option<SignedDuration> {
    let base = RETRY_DELAYS.get(usize::try_from(slot).ok()?.checked_sub(1)?)?;
    let factor = 1.0 + rand::random_range(-JITTER..=JITTER);
    Some(SignedDuration::from_secs_f64(base.as_secs_f64() * factor))
}

/// When the try after `delivery.slot` is due, counted from `after` (the failed try), or
/// `None` when that was the last.
fn next_try_at(delivery: &Delivery, after: Timestamp) -> Option<Timestamp> {
    let at = after + retry_delay(delivery.slot)?;
    if delivery.slot as usize == RETRY_DELAYS.len() {
        return Some(at.max(delivery.first_attempt_at + RETRY_SPAN));
    }
    Some(at)
}

/// Handles one outbox item, then removes it. An item already removed (its stream record handed
/// out again, or another relay pass got there first) is skipped: its work was done.
pub async fn handle(app: &App, key: &Key, outboxed: Outboxed) -> ApiResult<()> {
    let Some(current) = app.store.get(key).await? else {
        return Ok(());
    };
    match outboxed.work {
        Work::Event {
            organization_id,
            event,
        } => fan_out(app, &organization_id, &event).await?,
        Work::Redelivery {
            organization_id,
            endpoint_id,
            delivery_id,
        } => redeliver(app, &organization_id, &endpoint_id, &delivery_id).await?,
        Work::Drain {
            organization_id,
            endpoint_id,
        } => drain(app, &organization_id, &endpoint_id).await?,
    }
    // Removed as read: a nudge (the sweeper writing it again) meanwhile leaves it for the
    // stream record that nudge made.
    match app
        .store
        .write(vec![Write::Delete {
            key: key.clone(),
            expect: Expect::Revision(current.rev),
        }])
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// An event to every active endpoint subscribed to it: one delivery each, tried now.
async fn fan_out(app: &App, organization_id: &str, event: &Event) -> ApiResult<()> {
    let endpoints = super::subscribers(app, organization_id, event.event_type).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    deliveries::keep_event(app.store.as_ref(), organization_id, event, app.clock.now()).await?;
    let body = body_of(event);
    let tries = endpoints
        .into_iter()
        .map(|endpoint| first_try(app, organization_id, endpoint, event, &body));
    // Every endpoint gets its try even if another's bookkeeping failed; the first failure
    // leaves the outbox item for another pass, which skips the deliveries already made.
    let outcomes = futures_util::future::join_all(tries).await;
    outcomes.into_iter().collect::<ApiResult<Vec<()>>>()?;
    Ok(())
}

fn body_of(event: &Event) -> Bytes {
    serde_json::to_vec(event).expect("events serialize").into()
}

async fn first_try(
    app: &App,
    organization_id: &str,
    endpoint: Endpoint,
    event: &Event,
    body: &Bytes,
) -> ApiResult<()> {
    let id = deliveries::delivery_id(event, &endpoint.id);
    if deliveries::load(app.store.as_ref(), organization_id, &id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = app.clock.now();
    let delivery = Delivery {
        id,
        organization_id: organization_id.to_owned(),
        endpoint_id: endpoint.id.clone(),
        event_id: event.id.clone(),
        event_type: event.event_type,
        status: DeliveryStatus::Pending,
        attempts: Vec::new(),
        slot: 0,
        next_attempt_at: None,
        first_attempt_at: now,
        created_at: crate::time::parse_timestamp(&event.created_at).unwrap_or(now),
    };
    take_turn(app, endpoint, None, delivery, body).await
}

/// A retry schedule fired (or the sweeper handed over a retry whose schedule was lost): the
/// delivery's try `job.attempt`, unless that try was made already or the delivery is settled.
pub async fn run_retry(app: &App, job: &RetryJob) -> ApiResult<()> {
    let table = app.store.as_ref();
    let Some(loaded) = deliveries::load(table, &job.organization_id, &job.delivery_id).await?
    else {
        return Ok(());
    };
    let delivery = &loaded.value;
    if delivery.status != DeliveryStatus::Pending || job.attempt != delivery.slot + 1 {
        return Ok(());
    }
    let endpoint = match super::load(app, &job.organization_id, &delivery.endpoint_id).await {
        Ok((endpoint, _)) => Some(endpoint),
        Err(err) if err.status() == http::StatusCode::NOT_FOUND => None,
        Err(err) => return Err(err),
    };
    let event = deliveries::load_event(table, &job.organization_id, &delivery.event_id).await?;
    let give_up = match (&endpoint, &event) {
        (None, _) => Some("the endpoint was deleted"),
        (Some(endpoint), _) if endpoint.status == EndpointStatus::Disabled => {
            Some("the endpoint is disabled")
        }
        (_, None) => Some("the event is no longer kept"),
        _ => None,
    };
    if let Some(reason) = give_up {
        let mut after = delivery.clone();
        after.status = DeliveryStatus::Failed;
        after.next_attempt_at = None;
        after.attempts.push(AttemptRecord {
            at: app.clock.now(),
            status_code: None,
            error: Some(format!("not attempted: {reason}")),
            duration_ms: 0,
        });
        return match deliveries::save(table, Some(&loaded), &after, Vec::new()).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(err) => Err(err.into()),
        };
    }
    let (Some(endpoint), Some(event)) = (endpoint, event) else {
        return Ok(());
    };
    let body = body_of(&event);
    let delivery = loaded.value.clone();
    take_turn(app, endpoint, Some(loaded), delivery, &body).await
}

/// The scheduled try `slot + 1` of `delivery` (new when `before` is `None`). While the
/// endpoint is failing, its oldest waiting delivery goes first: if that one gets through,
/// the endpoint has recovered and its backlog — this delivery included — is drained in order.
async fn take_turn(
    app: &App,
    endpoint: Endpoint,
    before: Option<Loaded<Delivery>>,
    delivery: Delivery,
    body: &Bytes,
) -> ApiResult<()> {
    let organization_id = delivery.organization_id.clone();
    if endpoint.failing_since.is_some()
        && let Some((_, head)) =
            deliveries::backlog(app.store.as_ref(), &organization_id, &endpoint.id, None, 1)
                .await?
                .into_iter()
                .next()
        && head != delivery.id
        && let Some(recovered) = try_again(app, &organization_id, &endpoint, &head).await?
        && recovered
    {
        // The drain the recovery queued sends this one in its turn.
        return record_turn(app, before, &delivery, None).await;
    }
    let deadline = Instant::now() + ATTEMPT_TIMEOUT + std::time::Duration::from_secs(1);
    let Some(tried) = try_once(
        app,
        &endpoint,
        &delivery.event_id,
        body,
        ATTEMPT_TIMEOUT,
        deadline,
    )
    .await
    else {
        // No place among the endpoint's tries in flight: this try waits for the next slot.
        return record_turn(app, before, &delivery, None).await;
    };
    let succeeded = tried.record.succeeded();
    record_turn(app, before, &delivery, Some(&tried.record)).await?;
    note_health(app, &organization_id, &endpoint, &tried.record).await?;
    if !succeeded {
        tracing::info!(endpoint = %endpoint.id, event_type = tried_type(body), outcome = %tried.record.failure(), "webhook delivery failed");
    }
    Ok(())
}

/// How often a record is written again after losing a race to another worker.
const RECORD_RACES: usize = 10;

/// Records scheduled try `slot + 1` of `delivery` — `attempt`, or `None` when no try was made
/// (the drain will send it, or no place was free) — and makes the next try's schedule. Against
/// the latest state: a concurrent probe or drain that wrote the delivery meanwhile does not
/// make this try's record, or its next schedule, go missing; a try another worker already
/// recorded (a duplicate schedule) is left alone.
async fn record_turn(
    app: &App,
    before: Option<Loaded<Delivery>>,
    delivery: &Delivery,
    attempt: Option<&AttemptRecord>,
) -> ApiResult<()> {
    let table = app.store.as_ref();
    let mut current = before;
    for _ in 0..RECORD_RACES {
        let mut after = current
            .as_ref()
            .map_or_else(|| delivery.clone(), |loaded| loaded.value.clone());
        if after.status != DeliveryStatus::Pending || after.slot != delivery.slot {
            return Ok(());
        }
        after.slot += 1;
        match attempt {
            Some(attempt) => apply_try(&mut after, attempt, true),
            None => {
                after.next_attempt_at = next_try_at(&after, app.clock.now());
                if after.next_attempt_at.is_none() {
                    after.status = DeliveryStatus::Failed;
                }
            }
        }
        match deliveries::save(table, current.as_ref(), &after, Vec::new()).await {
            Ok(()) => {
                schedule_next(app, &after).await;
                return Ok(());
            }
            Err(StoreError::ConditionFailed) => {
                current = deliveries::load(table, &delivery.organization_id, &delivery.id).await?;
                if current.is_none() {
                    return Ok(());
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    tracing::warn!(delivery = %delivery.id, "a try could not be recorded: the delivery kept changing");
    Ok(())
}

/// Records a try outside the schedule (it uses none of the delivery's slots), against the
/// latest state.
async fn record_extra(
    app: &App,
    loaded: Loaded<Delivery>,
    attempt: &AttemptRecord,
) -> ApiResult<()> {
    let table = app.store.as_ref();
    let mut current = loaded;
    for _ in 0..RECORD_RACES {
        let mut after = current.value.clone();
        apply_try(&mut after, attempt, false);
        match deliveries::save(table, Some(&current), &after, Vec::new()).await {
            Ok(()) => return Ok(()),
            Err(StoreError::ConditionFailed) => {
                match deliveries::load(table, &after.organization_id, &after.id).await? {
                    Some(latest) => current = latest,
                    None => return Ok(()),
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    tracing::warn!(delivery = %current.value.id, "a try could not be recorded: the delivery kept changing");
    Ok(())
}

/// The schedule of a waiting delivery's next try (the retry entry covers one that cannot be
/// made: the sweeper hands it over).
async fn schedule_next(app: &App, delivery: &Delivery) {
    if delivery.status != DeliveryStatus::Pending {
        return;
    }
    let Some(at) = delivery.next_attempt_at else {
        return;
    };
    let job = Job::Retry(RetryJob {
        organization_id: delivery.organization_id.clone(),
        delivery_id: delivery.id.clone(),
        attempt: delivery.slot + 1,
    });
    if let Err(err) = app.scheduler.schedule(&job, at).await {
        tracing::warn!(delivery = %delivery.id, %err, "could not schedule a retry; the sweeper will hand it over");
    }
}

fn tried_type(body: &Bytes) -> String {
    serde_json::from_slice::<Event>(body)
        .map(|event| event.event_type.as_str().to_owned())
        .unwrap_or_default()
}

/// One more try of delivery `id` outside its schedule (a probe of a failing endpoint with its
/// oldest waiting delivery, a drain, a redelivery): it uses none of the delivery's scheduled
/// tries. `Some(true)`: it got through; `None`: nothing to try (gone, or its event is no
/// longer kept).
async fn try_again(
    app: &App,
    organization_id: &str,
    endpoint: &Endpoint,
    id: &str,
) -> ApiResult<Option<bool>> {
    let table = app.store.as_ref();
    let Some(loaded) = deliveries::load(table, organization_id, id).await? else {
        return Ok(None);
    };
    let Some(event) =
        deliveries::load_event(table, organization_id, &loaded.value.event_id).await?
    else {
        return Ok(None);
    };
    let body = body_of(&event);
    let deadline = Instant::now() + ATTEMPT_TIMEOUT + std::time::Duration::from_secs(1);
    let Some(tried) = try_once(app, endpoint, &event.id, &body, ATTEMPT_TIMEOUT, deadline).await
    else {
        return Ok(Some(false));
    };
    record_extra(app, loaded, &tried.record).await?;
    note_health(app, organization_id, endpoint, &tried.record).await?;
    Ok(Some(tried.record.succeeded()))
}

/// What a try does to a delivery: logged; a 2xx settles it; a failure of a scheduled try
/// (`scheduled`) sets the next one, or fails it when there is none left. A failed try outside
/// the schedule leaves a waiting delivery waiting and marks a settled one failed.
fn apply_try(delivery: &mut Delivery, attempt: &AttemptRecord, scheduled: bool) {
    delivery.attempts.push(attempt.clone());
    if attempt.succeeded() {
        delivery.status = DeliveryStatus::Succeeded;
        delivery.next_attempt_at = None;
        return;
    }
    if !delivery.event_type.is_lifecycle() {
        delivery.status = DeliveryStatus::Failed;
        return;
    }
    if scheduled {
        match next_try_at(delivery, attempt.at) {
            Some(at) => {
                delivery.status = DeliveryStatus::Pending;
                delivery.next_attempt_at = Some(at);
            }
            None => {
                delivery.status = DeliveryStatus::Failed;
                delivery.next_attempt_at = None;
            }
        }
    } else if delivery.status != DeliveryStatus::Pending {
        delivery.status = DeliveryStatus::Failed;
    }
}

/// Keeps an endpoint's health after a try: its first failure starts the clock; a failure 3
/// days after it disables the endpoint (with `webhook.disabled`, in the same transaction); a
/// success after failures clears it and queues the drain of its backlog.
pub async fn note_health(
    app: &App,
    organization_id: &str,
    endpoint: &Endpoint,
    attempt: &AttemptRecord,
) -> ApiResult<()> {
    let succeeded = attempt.succeeded();
    let unchanged = if succeeded {
        endpoint.failing_since.is_none()
    } else {
        endpoint
            .failing_since
            .is_some_and(|since| attempt.at.duration_since(since) < DISABLE_AFTER)
    };
    if unchanged {
        return Ok(());
    }
    crate::concurrency::optimistic(move || async move {
        let (mut current, rev) = super::load(app, organization_id, &endpoint.id).await?;
        let now = app.clock.now();
        let mut also = Vec::new();
        if succeeded {
            if current.failing_since.is_none() {
                return Ok(());
            }
            current.failing_since = None;
            also.push(outbox::drain(organization_id, &current.id, now)?);
        } else {
            match current.failing_since {
                None => current.failing_since = Some(attempt.at),
                Some(since)
                    if attempt.at.duration_since(since) >= DISABLE_AFTER
                        && current.status == EndpointStatus::Active =>
                {
                    current.status = EndpointStatus::Disabled;
                    current.disabled_reason = Some(format!(
                        "failing since {}",
                        crate::time::format_timestamp(since)
                    ));
                    current.updated_at = now;
                    let data = serde_json::json!({
                        "webhook": EndpointView::new(current.clone(), false),
                    });
                    also.push(outbox::event(
                        organization_id,
                        EventType::WebhookDisabled,
                        data,
                        now,
                    )?);
                    tracing::warn!(endpoint = %current.id, "webhook endpoint disabled after 3 days of failures");
                }
                Some(_) => return Ok(()),
            }
        }
        let mut writes = vec![Write::put(
            super::endpoint_key(organization_id, &current.id),
            &current,
            Expect::Revision(rev),
        )?];
        writes.extend(also);
        app.store.write(writes).await?;
        Ok(())
    })
    .await
    .or_else(|err| {
        // Deleted meanwhile: nothing to keep.
        if err.status() == http::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(err)
        }
    })
}

/// Sends a recovered endpoint's waiting deliveries, oldest first, until it fails again; when
/// time runs short it queues its own continuation.
async fn drain(app: &App, organization_id: &str, endpoint_id: &str) -> ApiResult<()> {
    let endpoint = match super::load(app, organization_id, endpoint_id).await {
        Ok((endpoint, _)) if endpoint.status == EndpointStatus::Active => endpoint,
        Ok(_) => return Ok(()),
        Err(err) if err.status() == http::StatusCode::NOT_FOUND => return Ok(()),
        Err(err) => return Err(err),
    };
    let stop_at = crate::deadline::current()
        .checked_sub(DRAIN_RESERVE)
        .unwrap_or_else(Instant::now);
    let mut after = None;
    let mut failures = 0;
    loop {
        let page = deliveries::backlog(
            app.store.as_ref(),
            organization_id,
            endpoint_id,
            after.clone(),
            DRAIN_PAGE,
        )
        .await?;
        for (position, id) in &page {
            if Instant::now() >= stop_at {
                let more = outbox::drain(organization_id, endpoint_id, app.clock.now())?;
                app.store.write(vec![more]).await?;
                return Ok(());
            }
            match try_again(app, organization_id, &endpoint, id).await? {
                Some(true) => failures = 0,
                Some(false) => {
                    failures += 1;
                    if failures >= DRAIN_FAILURES_IN_A_ROW {
                        return Ok(());
                    }
                }
                None => {}
            }
            after = Some(position.clone());
        }
        if page.len() < DRAIN_PAGE {
            return Ok(());
        }
    }
}

/// One more try of a delivery, asked for by the customer.
async fn redeliver(
    app: &App,
    organization_id: &str,
    endpoint_id: &str,
    delivery_id: &str,
) -> ApiResult<()> {
    let endpoint = match super::load(app, organization_id, endpoint_id).await {
        Ok((endpoint, _)) => endpoint,
        Err(err) if err.status() == http::StatusCode::NOT_FOUND => return Ok(()),
        Err(err) => return Err(err),
    };
    if endpoint.status == EndpointStatus::Disabled {
        tracing::info!(endpoint = %endpoint_id, "redelivery skipped: the endpoint is disabled");
        return Ok(());
    }
    try_again(app, organization_id, &endpoint, delivery_id).await?;
    Ok(())
}

/// Logs the tries of a dispatch's `callback.dispatch` to one endpoint (SPEC §8: deliveries of
/// `callback.dispatch` are logged too; they are never retried here — the dispatch's own
/// three tries are its retries).
pub async fn log_dispatch(
    app: &App,
    organization_id: &str,
    endpoint: &Endpoint,
    event: &Event,
    attempts: &[AttemptRecord],
) -> ApiResult<()> {
    let Some(first) = attempts.first() else {
        return Ok(());
    };
    let table = app.store.as_ref();
    let new = Delivery {
        id: deliveries::delivery_id(event, &endpoint.id),
        organization_id: organization_id.to_owned(),
        endpoint_id: endpoint.id.clone(),
        event_id: event.id.clone(),
        event_type: EventType::CallbackDispatch,
        status: DeliveryStatus::Failed,
        attempts: Vec::new(),
        slot: 0,
        next_attempt_at: None,
        first_attempt_at: first.at,
        created_at: crate::time::parse_timestamp(&event.created_at).unwrap_or(first.at),
    };
    let logged = |mut delivery: Delivery| {
        delivery.slot += 1;
        for attempt in attempts {
            apply_try(&mut delivery, attempt, false);
        }
        if let Some(last) = attempts.last() {
            delivery.status = if last.succeeded() {
                DeliveryStatus::Succeeded
            } else {
                DeliveryStatus::Failed
            };
        }
        delivery
    };
    // Written as new (a dispatch's event is new); only a dispatch taken over after its lease
    // ran out continues an event, and so a delivery, already logged.
    let mut before = None;
    for _ in 0..RECORD_RACES {
        let base = before.as_ref().map_or_else(
            || new.clone(),
            |loaded: &Loaded<Delivery>| loaded.value.clone(),
        );
        match deliveries::save(table, before.as_ref(), &logged(base), Vec::new()).await {
            Ok(()) => break,
            Err(StoreError::ConditionFailed) => {
                before = deliveries::load(table, organization_id, &new.id).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(last) = attempts.last() {
        note_health(app, organization_id, endpoint, last).await?;
    }
    Ok(())
}

/// Keeps the `callback.dispatch` event as sent, for its deliveries' log and redeliveries.
pub async fn keep_dispatch_event(app: &App, organization_id: &str, event: &Event) -> ApiResult<()> {
    deliveries::keep_event(app.store.as_ref(), organization_id, event, app.clock.now())
        .await
        .map_err(ApiError::from)
}

/// When an outbox item counts as stuck (its stream record was never handled): the sweeper
/// writes it again, which makes a new stream record.
pub const STUCK_AFTER: SignedDuration = SignedDuration::from_mins(5);

pub fn is_stuck(outboxed: &Outboxed, now: Timestamp) -> bool {
    now.duration_since(outboxed.queued_at) >= STUCK_AFTER * (outboxed.nudges as i32 + 1)
}

/// The sweeper's safety net for the stream: outbox items nobody handled within
/// [`STUCK_AFTER`] (a batch the stream gave up on) are written again, so the stream hands
/// them out once more. Answers how many it nudged.
pub async fn nudge_stuck(app: &App) -> ApiResult<usize> {
    let now = app.clock.now();
    let mut nudged = 0;
    for shard in 0..outbox::SHARDS {
        let query = crate::store::Query {
            pk: outbox::shard_pk(shard),
            range: crate::store::SortRange::All,
            after: None,
            descending: false,
            limit: 100,
        };
        for item in app.store.query(&query).await? {
            let Ok(mut outboxed) = outbox::decode(&item) else {
                continue;
            };
            if !is_stuck(&outboxed, now) {
                continue;
            }
            outboxed.nudges += 1;
            let write = Write::Put {
                key: item.key.clone(),
                doc: serde_json::to_value(&outboxed)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?,
                expect: Expect::Revision(item.rev),
                expires_at: item.expires_at,
            };
            match app.store.write(vec![write]).await {
                Ok(()) => nudged += 1,
                // Handled (removed) or nudged meanwhile.
                Err(StoreError::ConditionFailed) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    if nudged > 0 {
        tracing::warn!(
            nudged,
            "outbox items the stream did not hand out were written again"
        );
    }
    Ok(nudged)
}
