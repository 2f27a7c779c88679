//! Webhook endpoints (SPEC §5): the customer's HTTPS endpoints that receive `callback.dispatch`
//! (their agent runtime starts the call) and lifecycle events.
//!
//! Table layout: every endpoint of an organization is one item of the partition
//! `ORG#<org>#WEBHOOKS`, sort key = its id (ids sort by creation time), so the list is one
//! `Query` and dispatch reads the subscribers oldest first from the same partition. The
//! number of endpoints (at most [`MAX_ENDPOINTS`]) is the item `ORG#<org>#WEBHOOK_COUNT`,
//! changed in the same transaction as each create and delete.
//!
//! What happens to events after they are written: `outbox.rs` (the work queued with a change),
//! `worker.rs` (fan-out, tries, retries, endpoint health), `deliveries.rs` (the delivery log
//! and its routes), `relay.rs` (the local reader of the outbox), `delivery.rs` (one try).

pub mod deliveries;
pub mod delivery;
pub mod gate;
pub mod outbox;
pub mod relay;
pub mod sender;
pub mod target;
pub mod worker;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::optimistic;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Field, FieldReader};
use crate::http::{ApiResponse, StatusCode, check_if_match, etag_of};
use crate::ids;
use crate::page::{Page, PageScope};
use crate::store::{Expect, Key, Query, SortRange, StoreError, Write};
use crate::time::rfc3339;

pub const ID_PREFIX: &str = "we_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "callback.dispatch")]
    CallbackDispatch,
    #[serde(rename = "callback.scheduled")]
    CallbackScheduled,
    #[serde(rename = "callback.dispatched")]
    CallbackDispatched,
    #[serde(rename = "callback.failed")]
    CallbackFailed,
    #[serde(rename = "callback.cancelled")]
    CallbackCancelled,
    #[serde(rename = "callback.rescheduled")]
    CallbackRescheduled,
    #[serde(rename = "callback.outcome")]
    CallbackOutcome,
    #[serde(rename = "flow.published")]
    FlowPublished,
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

pub const EVENT_TYPES: &[&str] = &[
    "callback.dispatch",
    "callback.scheduled",
    "callback.dispatched",
    "callback.failed",
    "callback.cancelled",
    "callback.rescheduled",
    "callback.outcome",
    "flow.published",
    "webhook.disabled",
];

/// At most this many endpoints per organization (SPEC §8).
pub const MAX_ENDPOINTS: u64 = 20;
/// After a rotation, deliveries carry the old secret's signature too for this long.
pub const ROTATION_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallbackDispatch => "callback.dispatch",
            Self::CallbackScheduled => "callback.scheduled",
            Self::CallbackDispatched => "callback.dispatched",
            Self::CallbackFailed => "callback.failed",
            Self::CallbackCancelled => "callback.cancelled",
            Self::CallbackRescheduled => "callback.rescheduled",
            Self::CallbackOutcome => "callback.outcome",
            Self::FlowPublished => "flow.published",
            Self::WebhookDisabled => "webhook.disabled",
        }
    }

    /// Whether this is a lifecycle event (sent through the outbox, retried for hours), not
    /// the dispatch itself.
    pub fn is_lifecycle(self) -> bool {
        self != Self::CallbackDispatch
    }
}

impl std::str::FromStr for EventType {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        serde_json::from_value(Value::String(text.to_owned())).map_err(|_| ())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointStatus {
    Active,
    Disabled,
}

/// An endpoint as stored (with its signing secret, which deliveries need).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub status: EndpointStatus,
    pub description: Option<String>,
    pub secret: String,
    /// Why Flowline disabled the endpoint (`failing since <ts>`); `None` otherwise.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Since when every try has failed (`None`: the last try succeeded).
    #[serde(default, with = "rfc3339::option")]
    pub failing_since: Option<Timestamp>,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default, with = "rfc3339::option")]
    pub previous_secret_until: Option<Timestamp>,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn receives(&self, event: EventType) -> bool {
        self.status == EndpointStatus::Active && self.events.contains(&event)
    }

    /// The secrets a delivery at `now` is signed with: the current one, and for 24 hours after
    /// a rotation the previous one too.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// An endpoint as the API shows it: the secret only in the create answer.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub status: EndpointStatus,
    pub disabled_reason: Option<String>,
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

impl EndpointView {
    pub fn new(endpoint: Endpoint, show_secret: bool) -> Self {
        Self {
            id: endpoint.id,
            url: endpoint.url,
            events: endpoint.events,
            status: endpoint.status,
            disabled_reason: endpoint.disabled_reason,
            description: endpoint.description,
            secret: show_secret.then_some(endpoint.secret),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }

    /// The endpoint's `ETag`: that of its representation without the secret, so the create's
    /// answer (the one that shows the secret) carries the ETag that GET shows and `If-Match`
    /// is compared with.
    pub fn etag(&self) -> String {
        etag_of(&Self {
            secret: None,
            ..self.clone()
        })
    }

    /// The answer for this endpoint, with its [`etag`](Self::etag).
    pub fn response(&self, status: StatusCode) -> ApiResponse {
        ApiResponse::resource(status, self).with_header(http::header::ETAG, &self.etag())
    }
}

/// The partition of an organization's endpoints (one query lists them all).
pub fn endpoints_pk(organization_id: &str) -> String {
    format!("ORG#{organization_id}#WEBHOOKS")
}

pub fn endpoint_key(organization_id: &str, id: &str) -> Key {
    Key::new(endpoints_pk(organization_id), id)
}

fn count_key(organization_id: &str) -> Key {
    Key::new(format!("ORG#{organization_id}#WEBHOOK_COUNT"), "COUNT")
}

#[derive(Debug, Serialize, Deserialize)]
struct EndpointCount {
    count: u64,
}

/// How many endpoints the organization has, and what a write of the next count expects.
async fn endpoint_count(app: &App, organization_id: &str) -> Result<(u64, Expect), StoreError> {
    if let Some(item) = app.store.get(&count_key(organization_id)).await? {
        return Ok((
            item.decode::<EndpointCount>()?.count,
            Expect::Revision(item.rev),
        ));
    }
    // Endpoints made before the count existed: counted once, then kept.
    let mut count = 0;
    let mut after = None;
    loop {
        let query = Query {
            pk: endpoints_pk(organization_id),
            range: SortRange::All,
            after,
            descending: false,
            limit: 100,
        };
        let items = app.store.query(&query).await?;
        count += items.len() as u64;
        if items.len() < 100 {
            return Ok((count, Expect::Absent));
        }
        after = items.last().map(|item| item.key.sk.clone());
    }
}

fn count_write(organization_id: &str, count: u64, expect: Expect) -> Result<Write, StoreError> {
    Write::put(count_key(organization_id), &EndpointCount { count }, expect)
}

fn not_found() -> ApiError {
    ApiError::not_found("Webhook endpoint")
}

fn new_secret() -> String {
    use base64::Engine;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(ids::random_bytes::<32>())
    )
}

/// Fields of a create (`creating`) or update body.
struct EndpointFields {
    url: Option<String>,
    events: Option<Vec<EventType>>,
    status: Option<EndpointStatus>,
    description: Field<String>,
}

async fn read_fields(
    app: &App,
    body: Map<String, Value>,
    creating: bool,
) -> ApiResult<EndpointFields> {
    let mut fields = FieldReader::new(body);
    for name in [
        "id",
        "secret",
        "disabled_reason",
        "created_at",
        "updated_at",
    ] {
        fields.refuse(name, "is read-only");
    }
    let url = if creating {
        fields.required_string("url", 1, 2048)
    } else {
        match fields.string("url", 2048) {
            // An endpoint always has a URL: `null` cannot mean "remove it".
            Field::Null => {
                fields.problem("url", "must not be null");
                None
            }
            other => other.into_option(),
        }
    };
    let events = match fields.take("events") {
        Field::Set(Value::Array(items)) if !items.is_empty() => {
            let parsed: Result<Vec<EventType>, _> =
                items.into_iter().map(serde_json::from_value).collect();
            match parsed {
                Ok(mut events) => {
                    events.sort_by_key(|e| e.as_str());
                    events.dedup();
                    Some(events)
                }
                Err(_) => {
                    fields.problem(
                        "events",
                        format!("must be a non-empty list of: {}", EVENT_TYPES.join(", ")),
                    );
                    None
                }
            }
        }
        Field::Absent if !creating => None,
        _ => {
            fields.problem(
                "events",
                format!("must be a non-empty list of: {}", EVENT_TYPES.join(", ")),
            );
            None
        }
    };
    let status = match fields.choice::<EndpointStatus>("status", &["active", "disabled"]) {
        Field::Null => {
            fields.problem("status", "must not be null");
            None
        }
        other => other.into_option(),
    };
    let description = fields.string("description", 500);
    let mut problems = fields.into_problems();
    if let Some(text) = &url
        && let Err(message) = target::check_url(text, app.config.allow_private_targets).await
    {
        problems.push(crate::error::FieldProblem::new("url", message));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(EndpointFields {
        url,
        events,
        status,
        description,
    })
}

pub async fn create(
    app: &App,
    caller: &Caller,
    body: Map<String, Value>,
) -> ApiResult<EndpointView> {
    let fields = read_fields(app, body, true).await?;
    let now = app.clock.now();
    let endpoint = Endpoint {
        id: ids::new_id(ID_PREFIX, now.as_millisecond()),
        url: fields.url.unwrap_or_default(),
        events: fields.events.unwrap_or_default(),
        status: fields.status.unwrap_or(EndpointStatus::Active),
        description: fields.description.into_option(),
        secret: new_secret(),
        disabled_reason: None,
        failing_since: None,
        previous_secret: None,
        previous_secret_until: None,
        created_at: now,
        updated_at: now,
    };
    let organization_id = &caller.organization_id;
    let endpoint = &endpoint;
    optimistic(move || async move {
        // The count and the endpoint in one transaction: concurrent creates cannot both take
        // the twentieth place.
        let (count, expect) = endpoint_count(app, organization_id).await?;
        if count >= MAX_ENDPOINTS {
            return Err(ApiError::conflict(format!(
                "An organization has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            ))
            .into());
        }
        let key = endpoint_key(organization_id, &endpoint.id);
        app.store
            .write(vec![
                Write::put(key, endpoint, Expect::Absent)?,
                count_write(organization_id, count + 1, expect)?,
            ])
            .await?;
        Ok(())
    })
    .await?;
    Ok(EndpointView::new(endpoint.clone(), true))
}

pub async fn load(app: &App, organization_id: &str, id: &str) -> ApiResult<(Endpoint, u64)> {
    if !ids::is_id(id, ID_PREFIX) {
        return Err(not_found());
    }
    let item = app
        .store
        .get(&endpoint_key(organization_id, id))
        .await?
        .ok_or_else(not_found)?;
    Ok((item.decode()?, item.rev))
}

pub async fn get(app: &App, caller: &Caller, id: &str) -> ApiResult<EndpointView> {
    let (endpoint, _) = load(app, &caller.organization_id, id).await?;
    Ok(EndpointView::new(endpoint, false))
}

/// The create's answer again, for an idempotent replay: with the secret, as the first time.
/// A replay serves a client whose first answer was lost, and the secret is shown nowhere else.
pub async fn get_as_created(app: &App, caller: &Caller, id: &str) -> ApiResult<EndpointView> {
    let (endpoint, _) = load(app, &caller.organization_id, id).await?;
    Ok(EndpointView::new(endpoint, true))
}

pub async fn update(
    app: &App,
    caller: &Caller,
    id: &str,
    body: Map<String, Value>,
    if_match: Option<&str>,
) -> ApiResult<EndpointView> {
    let fields = read_fields(app, body, false).await?;
    let fields = &fields;
    optimistic(move || async move {
        let (mut endpoint, rev) = load(app, &caller.organization_id, id).await?;
        check_if_match(if_match, &EndpointView::new(endpoint.clone(), false).etag())?;
        if let Some(url) = &fields.url {
            endpoint.url = url.clone();
        }
        if let Some(events) = &fields.events {
            endpoint.events = events.clone();
        }
        if let Some(status) = fields.status {
            if status == EndpointStatus::Active && endpoint.status == EndpointStatus::Disabled {
                // Enabled again: its failures so far no longer count towards disabling it.
                endpoint.failing_since = None;
            }
            if status == EndpointStatus::Active {
                endpoint.disabled_reason = None;
            }
            endpoint.status = status;
        }
        match &fields.description {
            Field::Set(text) => endpoint.description = Some(text.clone()),
            Field::Null => endpoint.description = None,
            Field::Absent => {}
        }
        endpoint.updated_at = app.clock.now();
        let key = endpoint_key(&caller.organization_id, id);
        app.store
            .write(vec![Write::put(key, &endpoint, Expect::Revision(rev))?])
            .await?;
        Ok(EndpointView::new(endpoint, false))
    })
    .await
}

pub async fn delete(app: &App, caller: &Caller, id: &str) -> ApiResult<String> {
    let organization_id = &caller.organization_id;
    let tries = &std::sync::atomic::AtomicU32::new(0);
    optimistic(move || async move {
        let first = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
        let (_, rev) = match load(app, organization_id, id).await {
            Ok(found) => found,
            // Deleted meanwhile by another request: what this one wanted.
            Err(err) if err.code == crate::error::ErrorCode::NotFound && !first => {
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        };
        let (count, expect) = endpoint_count(app, organization_id).await?;
        app.store
            .write(vec![
                Write::Delete {
                    key: endpoint_key(organization_id, id),
                    expect: Expect::Revision(rev),
                },
                count_write(organization_id, count.saturating_sub(1), expect)?,
            ])
            .await?;
        Ok(())
    })
    .await?;
    Ok(format!("Webhook endpoint {id} deleted"))
}

/// `POST /v1/webhooks/{id}/rotate-secret`: a new secret, shown only in this answer; for
/// [`ROTATION_OVERLAP`] deliveries are signed with the old one too, so receivers can switch
/// without losing a delivery.
pub async fn rotate_secret(app: &App, caller: &Caller, id: &str) -> ApiResult<EndpointView> {
    optimistic(move || async move {
        let (mut endpoint, rev) = load(app, &caller.organization_id, id).await?;
        let now = app.clock.now();
        endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, new_secret()));
        endpoint.previous_secret_until = Some(now + ROTATION_OVERLAP);
        endpoint.updated_at = now;
        let key = endpoint_key(&caller.organization_id, id);
        app.store
            .write(vec![Write::put(key, &endpoint, Expect::Revision(rev))?])
            .await?;
        Ok(EndpointView::new(endpoint, true))
    })
    .await
}

/// `GET /v1/webhooks`: newest first.
pub async fn list(
    app: &App,
    caller: &Caller,
    limit: u32,
    page_token: Option<&str>,
) -> ApiResult<Page<EndpointView>> {
    let scope = PageScope::new("webhooks", &caller.organization_id);
    let tokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let limit = limit as usize;
    let query = Query {
        pk: endpoints_pk(&caller.organization_id),
        range: SortRange::All,
        after,
        descending: true,
        limit: limit + 1,
    };
    let (items, next) = crate::store::split_page(app.store.query(&query).await?, limit);
    let endpoints = items
        .iter()
        .map(|item| {
            item.decode::<Endpoint>()
                .map(|e| EndpointView::new(e, false))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        items: endpoints,
        next_page_token: next.map(|position| tokens.issue(&scope, &position, now)),
    })
}

/// The organization's active endpoints subscribed to `event`, oldest first.
pub async fn subscribers(
    app: &App,
    organization_id: &str,
    event: EventType,
) -> Result<Vec<Endpoint>, StoreError> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let query = Query {
            pk: endpoints_pk(organization_id),
            range: SortRange::All,
            after,
            descending: false,
            limit: 100,
        };
        let items = app.store.query(&query).await?;
        let last = items.last().map(|item| item.key.sk.clone());
        for item in &items {
            let endpoint: Endpoint = item.decode()?;
            if endpoint.receives(event) {
                found.push(endpoint);
            }
        }
        if items.len() < 100 {
            return Ok(found);
        }
        after = last;
    }
}
