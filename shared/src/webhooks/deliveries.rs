//! The delivery log (SPEC §8): every event sent to an endpoint is a delivery the customer can
//! see, redeliver, or recover with others. Kept 30 days (DynamoDB's TTL removes them).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | delivery | `ORG#<org>#DLV#<id>` | `DELIVERY` |
//! | the event as sent (shared by its deliveries) | `ORG#<org>#EVT#<event id>` | `EVENT` |
//! | list entry (4 per delivery) | `ORG#<org>#WE#<endpoint>#DLVS#s=<status>#t=<type>#<shard 0-3>` | `<id>` |
//! | backlog entry (while pending) | `ORG#<org>#WE#<endpoint>#PENDING` | `<first try, ms>#<id>` |
//! | retry entry (while pending) | `DLVDUE#<shard 0-31>` | `<next try + 2 min, ms>#<id>` |
//!
//! List entries exist for each combination of the filters `status` and `event_type` with "any"
//! (`*`), spread over [`LIST_SHARDS`] partitions like callback lists, so a filtered page is a
//! merge of 4 queries of `limit + 1` and one batch read: O(page size). Delivery ids start with
//! the event's time and end with digits derived from the event and the endpoint, so one event
//! makes one delivery per endpoint however often it is fanned out, and "newest first" is a
//! reverse sort on the id. The backlog entries are an endpoint's waiting deliveries in the
//! order of their first try (what a recovered endpoint receives first); the retry entries are
//! the sweeper's safety net for a retry whose schedule never fired.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::delivery::{AttemptRecord, Event};
use super::{EndpointStatus, EventType, outbox};
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::fields::FieldReader;
use crate::ids;
use crate::page::{Page, PageScope};
use crate::store::{
    Entries, Expect, Item, Key, Loaded, Query, SortRange, StoreError, Table, Write, merged_page,
    reindex, shard_of,
};
use crate::time::rfc3339;

pub const ID_PREFIX: &str = "del_";
/// How long deliveries (and the events they carry) are kept.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);
/// Partitions of each delivery list (an endpoint receiving 1,000 events a second).
pub const LIST_SHARDS: u32 = 4;
/// Partitions of the retry index.
pub const DUE_SHARDS: u32 = 32;
/// The sweeper takes over a retry this late (its schedule is lost).
pub const SWEEP_GRACE_MS: i64 = 2 * 60 * 1000;
/// Tries a delivery log keeps (the oldest beyond it are dropped, counted in `tries`).
const ATTEMPTS_KEPT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub organization_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRecord>,
    /// The scheduled tries used so far (1 = the first); retries follow SPEC §8's schedule.
    pub slot: u32,
    #[serde(with = "rfc3339::option")]
    pub next_attempt_at: Option<Timestamp>,
    /// When the first try was made (or due): the delivery's place in its endpoint's backlog.
    #[serde(with = "rfc3339")]
    pub first_attempt_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
}

/// A delivery as the API shows it; one read alone adds `payload`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRecord>,
    #[serde(with = "rfc3339::option")]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl DeliveryView {
    fn new(delivery: Delivery, payload: Option<Value>) -> Self {
        Self {
            id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            created_at: delivery.created_at,
            payload,
        }
    }
}

/// The id of the delivery of `event` to `endpoint_id`: the same every time it is asked.
pub fn delivery_id(event: &Event, endpoint_id: &str) -> String {
    let created =
        crate::time::parse_timestamp(&event.created_at).map_or(0, |at| at.as_millisecond());
    ids::derived_id(ID_PREFIX, created, &format!("{}/{endpoint_id}", event.id))
}

fn item_key(organization_id: &str, id: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#DLV#{id}"), "DELIVERY")
}

fn event_key(organization_id: &str, event_id: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#EVT#{event_id}"), "EVENT")
}

fn list_pk(
    organization_id: &str,
    endpoint_id: &str,
    status: Option<DeliveryStatus>,
    event_type: Option<EventType>,
    shard: u32,
) -> String {
    format!(
        "ORG#{organization_id}#WE#{endpoint_id}#DLVS#s={}#t={}#{shard}",
        status.map_or("*", DeliveryStatus::as_str),
        event_type.map_or("*", EventType::as_str),
    )
}

fn backlog_pk(organization_id: &str, endpoint_id: &str) -> String {
    format!("ORG#{organization_id}#WE#{endpoint_id}#PENDING")
}

fn due_pk(shard: u32) -> String {
    format!("DLVDUE#{shard}")
}

/// What a retry entry points at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DueRetry {
    pub organization_id: String,
    pub delivery_id: String,
    pub attempt: u32,
}

fn entries(delivery: &Delivery) -> Entries {
    let mut entries = Entries::new();
    let shard = shard_of(&delivery.id, LIST_SHARDS);
    for status in [None, Some(delivery.status)] {
        for event_type in [None, Some(delivery.event_type)] {
            let pk = list_pk(
                &delivery.organization_id,
                &delivery.endpoint_id,
                status,
                event_type,
                shard,
            );
            entries.insert(Key::new(pk, &delivery.id), serde_json::json!({}));
        }
    }
    if delivery.status == DeliveryStatus::Pending {
        let backlog = Key::new(
            backlog_pk(&delivery.organization_id, &delivery.endpoint_id),
            format!(
                "{:013}#{}",
                delivery.first_attempt_at.as_millisecond().max(0),
                delivery.id
            ),
        );
        entries.insert(backlog, serde_json::json!({}));
        if let Some(next) = delivery.next_attempt_at {
            let key = Key::new(
                due_pk(shard_of(&delivery.id, DUE_SHARDS)),
                format!(
                    "{:013}#{}",
                    (next.as_millisecond() + SWEEP_GRACE_MS).max(0),
                    delivery.id
                ),
            );
            let due = DueRetry {
                organization_id: delivery.organization_id.clone(),
                delivery_id: delivery.id.clone(),
                attempt: delivery.slot + 1,
            };
            entries.insert(key, serde_json::to_value(due).expect("entries serialize"));
        }
    }
    entries
}

fn expiry(delivery: &Delivery) -> i64 {
    (delivery.created_at + RETENTION).as_second()
}

pub async fn load(
    table: &dyn Table,
    organization_id: &str,
    id: &str,
) -> Result<Option<Loaded<Delivery>>, StoreError> {
    crate::store::load(table, &item_key(organization_id, id)).await
}

/// Writes `after` (new, or replacing `before` if unchanged since read) with its entries and
/// `also`, in one transaction; everything expires with the delivery.
pub async fn save(
    table: &dyn Table,
    before: Option<&Loaded<Delivery>>,
    after: &Delivery,
    also: Vec<Write>,
) -> Result<(), StoreError> {
    let expect = before.map_or(Expect::Absent, |before| Expect::Revision(before.rev));
    let mut record = after.clone();
    if record.attempts.len() > ATTEMPTS_KEPT {
        let extra = record.attempts.len() - ATTEMPTS_KEPT;
        record.attempts.drain(..extra);
    }
    let mut writes = vec![Write::put(
        item_key(&after.organization_id, &after.id),
        &record,
        expect,
    )?];
    let old = before.map(|b| entries(&b.value)).unwrap_or_default();
    writes.extend(reindex(&old, &entries(&record)));
    let expires = expiry(after);
    for write in &mut writes {
        if let Write::Put { expires_at, .. } = write {
            *expires_at = Some(expires);
        }
    }
    writes.extend(also);
    table.write(writes).await
}

/// Keeps the event as sent, for redeliveries, retries and the log (written again unchanged
/// when an event is fanned out twice).
pub async fn keep_event(
    table: &dyn Table,
    organization_id: &str,
    event: &Event,
    now: Timestamp,
) -> Result<(), StoreError> {
    let doc = serde_json::to_value(event).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    table
        .write(vec![Write::Put {
            key: event_key(organization_id, &event.id),
            doc,
            expect: Expect::Anything,
            expires_at: Some((now + RETENTION).as_second()),
        }])
        .await
}

pub async fn load_event(
    table: &dyn Table,
    organization_id: &str,
    event_id: &str,
) -> Result<Option<Event>, StoreError> {
    match table.get(&event_key(organization_id, event_id)).await? {
        Some(item) => Ok(Some(item.decode()?)),
        None => Ok(None),
    }
}

/// The endpoint's waiting deliveries in the order of their first try, after `after`.
pub async fn backlog(
    table: &dyn Table,
    organization_id: &str,
    endpoint_id: &str,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let query = Query {
        pk: backlog_pk(organization_id, endpoint_id),
        range: SortRange::All,
        after,
        descending: false,
        limit,
    };
    Ok(table
        .query(&query)
        .await?
        .into_iter()
        .filter_map(|item| {
            let id = item.key.sk.split_once('#')?.1.to_owned();
            Some((item.key.sk, id))
        })
        .collect())
}

/// Retries whose time (plus the grace) has passed, from one shard, oldest first.
pub async fn due(
    table: &dyn Table,
    shard: u32,
    now_ms: i64,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, DueRetry)>, StoreError> {
    let query = Query {
        pk: due_pk(shard),
        range: SortRange::Between("0".to_owned(), format!("{:013}#~", (now_ms - 1).max(0))),
        after,
        descending: false,
        limit,
    };
    table
        .query(&query)
        .await?
        .iter()
        .map(|item| Ok((item.key.sk.clone(), item.decode::<DueRetry>()?)))
        .collect()
}

/// Every retry waiting in one shard of the retry index, whenever due, soonest first, after
/// `after` (a position this answers with each), with the time of its try: what a process whose
/// timers died with the last one arms again. It reads the index alone.
pub async fn waiting(
    table: &dyn Table,
    shard: u32,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, jiff::Timestamp, DueRetry)>, StoreError> {
    let query = Query {
        pk: due_pk(shard),
        range: SortRange::All,
        after,
        descending: false,
        limit,
    };
    table
        .query(&query)
        .await?
        .iter()
        .map(|item| {
            let due_ms = crate::store::due_ms_of(item)?;
            let at = jiff::Timestamp::from_millisecond(due_ms - SWEEP_GRACE_MS)
                .map_err(|_| StoreError::Corrupt(format!("retry entry {}", item.key.sk)))?;
            Ok((item.key.sk.clone(), at, item.decode::<DueRetry>()?))
        })
        .collect()
}

fn not_found() -> ApiError {
    ApiError::not_found("Delivery")
}

/// The endpoint named in the path, which must be the caller's.
async fn endpoint_of(app: &App, caller: &Caller, endpoint_id: &str) -> ApiResult<super::Endpoint> {
    Ok(super::load(app, &caller.organization_id, endpoint_id)
        .await?
        .0)
}

/// A delivery of the caller's endpoint `endpoint_id`.
async fn delivery_of(
    app: &App,
    caller: &Caller,
    endpoint_id: &str,
    id: &str,
) -> ApiResult<Loaded<Delivery>> {
    if !ids::is_id(id, ID_PREFIX) {
        return Err(not_found());
    }
    let found = load(app.store.as_ref(), &caller.organization_id, id)
        .await?
        .filter(|delivery| delivery.value.endpoint_id == endpoint_id)
        .ok_or_else(not_found)?;
    Ok(found)
}

/// The filters of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilters {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
}

/// `GET /v1/webhooks/{id}/deliveries`: newest first.
pub async fn list(
    app: &App,
    caller: &Caller,
    endpoint_id: &str,
    filters: DeliveryFilters,
    limit: u32,
    page_token: Option<&str>,
) -> ApiResult<Page<DeliveryView>> {
    endpoint_of(app, caller, endpoint_id).await?;
    let organization_id = &caller.organization_id;
    let list_name = format!("deliveries:{endpoint_id}");
    let scope = PageScope::new("deliveries", organization_id)
        .filter("endpoint", Some(&list_name))
        .filter("status", filters.status.map(DeliveryStatus::as_str))
        .filter("event_type", filters.event_type.map(EventType::as_str));
    let tokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let table = app.store.as_ref();
    let pks = (0..LIST_SHARDS)
        .map(|shard| {
            list_pk(
                organization_id,
                endpoint_id,
                filters.status,
                filters.event_type,
                shard,
            )
        })
        .collect();
    let (entries, next) = merged_page(table, pks, SortRange::All, after, limit as usize).await?;
    let keys: Vec<Key> = entries
        .iter()
        .map(|entry| item_key(organization_id, &entry.key.sk))
        .collect();
    let mut deliveries = Vec::with_capacity(keys.len());
    for item in table.get_many(&keys).await?.into_iter().flatten() {
        deliveries.push(DeliveryView::new(item.decode::<Delivery>()?, None));
    }
    Ok(Page {
        items: deliveries,
        next_page_token: next.map(|position| tokens.issue(&scope, &position, now)),
    })
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery}`: with the event as sent.
pub async fn get(
    app: &App,
    caller: &Caller,
    endpoint_id: &str,
    id: &str,
) -> ApiResult<DeliveryView> {
    endpoint_of(app, caller, endpoint_id).await?;
    let delivery = delivery_of(app, caller, endpoint_id, id).await?.value;
    let payload = load_event(
        app.store.as_ref(),
        &caller.organization_id,
        &delivery.event_id,
    )
    .await?
    .map(|event| serde_json::to_value(event).unwrap_or(Value::Null));
    Ok(DeliveryView::new(delivery, payload))
}

fn check_enabled(endpoint: &super::Endpoint) -> ApiResult<()> {
    if endpoint.status == EndpointStatus::Disabled {
        return Err(ApiError::conflict(
            "The endpoint is disabled: set its status to active first",
        ));
    }
    Ok(())
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver` → 202: one more try, soon, with
/// the same `webhook-id`. It never changes a callback: a redelivered `callback.dispatch` is a
/// notification, not a second dispatch.
pub async fn redeliver(
    app: &App,
    caller: &Caller,
    endpoint_id: &str,
    id: &str,
) -> ApiResult<DeliveryView> {
    let endpoint = endpoint_of(app, caller, endpoint_id).await?;
    let delivery = delivery_of(app, caller, endpoint_id, id).await?.value;
    check_enabled(&endpoint)?;
    let queued = outbox::redelivery(
        &caller.organization_id,
        endpoint_id,
        &delivery.id,
        app.clock.now(),
    )?;
    app.store.write(vec![queued]).await?;
    Ok(DeliveryView::new(delivery, None))
}

/// What `recover` queued.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub queued: usize,
}

/// `POST /v1/webhooks/{id}/recover` `{"since", "until"?}` → 202: every `failed` delivery of the
/// endpoint created in the window is tried again, once.
pub async fn recover(
    app: &App,
    caller: &Caller,
    endpoint_id: &str,
    body: Map<String, Value>,
) -> ApiResult<Recovered> {
    let now = app.clock.now();
    let mut fields = FieldReader::new(body);
    let since = fields.required_timestamp("since");
    let until = fields.timestamp("until").into_option();
    let mut problems = fields.into_problems();
    if let Some(since) = since {
        if since > now {
            problems.push(crate::error::FieldProblem::new(
                "since",
                "must not be in the future",
            ));
        }
        if since < now - RETENTION {
            problems.push(crate::error::FieldProblem::new(
                "since",
                "must be within the last 30 days (deliveries are kept 30 days)",
            ));
        }
        if until.is_some_and(|until| until < since) {
            problems.push(crate::error::FieldProblem::new(
                "until",
                "must not be before since",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let since = since.unwrap_or(now);
    let until = until.unwrap_or(now);
    let endpoint = endpoint_of(app, caller, endpoint_id).await?;
    check_enabled(&endpoint)?;
    let organization_id = &caller.organization_id;
    let range = SortRange::Between(
        ids::time_part(ID_PREFIX, since.as_millisecond()),
        format!("{}~", ids::time_part(ID_PREFIX, until.as_millisecond())),
    );
    let table = app.store.as_ref();
    let mut queued = 0;
    for shard in 0..LIST_SHARDS {
        let mut after = None;
        loop {
            let query = Query {
                pk: list_pk(
                    organization_id,
                    endpoint_id,
                    Some(DeliveryStatus::Failed),
                    None,
                    shard,
                ),
                range: range.clone(),
                after,
                descending: false,
                limit: 100,
            };
            let items: Vec<Item> = table.query(&query).await?;
            let writes = items
                .iter()
                .map(|item| outbox::redelivery(organization_id, endpoint_id, &item.key.sk, now))
                .collect::<Result<Vec<_>, _>>()?;
            queued += writes.len();
            if !writes.is_empty() {
                table.write(writes).await?;
            }
            if items.len() < 100 {
                break;
            }
            after = items.last().map(|item| item.key.sk.clone());
        }
    }
    Ok(Recovered { queued })
}
