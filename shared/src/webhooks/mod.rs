//! Webhook endpoints (SPEC §5): the customer's HTTPS endpoints that receive `callback.dispatch`
//! (their agent runtime starts the call) and lifecycle events.
//!
//! Table layout: every endpoint of an organization is one item of the partition
//! `ORG#<org>#WEBHOOKS`, sort key = its id (ids sort by creation time), so the list is one
//! `Query` and dispatch reads the subscribers oldest first from the same partition.

pub mod delivery;
pub mod gate;
pub mod sender;
pub mod target;

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
    #[serde(rename = "flow.published")]
    FlowPublished,
}

pub const EVENT_TYPES: &[&str] = &[
    "callback.dispatch",
    "callback.scheduled",
    "callback.dispatched",
    "callback.failed",
    "callback.cancelled",
    "flow.published",
];

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallbackDispatch => "callback.dispatch",
            Self::CallbackScheduled => "callback.scheduled",
            Self::CallbackDispatched => "callback.dispatched",
            Self::CallbackFailed => "callback.failed",
            Self::CallbackCancelled => "callback.cancelled",
            Self::FlowPublished => "flow.published",
        }
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
}

/// An endpoint as the API shows it: the secret only in the create answer.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub status: EndpointStatus,
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

fn partition(organization_id: &str) -> String {
    format!("ORG#{organization_id}#WEBHOOKS")
}

fn endpoint_key(organization_id: &str, id: &str) -> Key {
    Key::new(partition(organization_id), id)
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
    for name in ["id", "secret", "created_at", "updated_at"] {
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
        created_at: now,
        updated_at: now,
    };
    let key = endpoint_key(&caller.organization_id, &endpoint.id);
    app.store
        .write(vec![Write::put(key, &endpoint, Expect::Absent)?])
        .await?;
    Ok(EndpointView::new(endpoint, true))
}

async fn load(app: &App, organization_id: &str, id: &str) -> ApiResult<(Endpoint, u64)> {
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
    let (_, rev) = load(app, &caller.organization_id, id).await?;
    let key = endpoint_key(&caller.organization_id, id);
    match app
        .store
        .write(vec![Write::Delete {
            key,
            expect: Expect::Revision(rev),
        }])
        .await
    {
        Ok(()) => Ok(format!("Webhook endpoint {id} deleted")),
        // Deleted (or changed) meanwhile: deleting again is what the caller wants.
        Err(StoreError::ConditionFailed) => match load(app, &caller.organization_id, id).await {
            Err(_) => Ok(format!("Webhook endpoint {id} deleted")),
            Ok((_, rev)) => {
                let key = endpoint_key(&caller.organization_id, id);
                app.store
                    .write(vec![Write::Delete {
                        key,
                        expect: Expect::Revision(rev),
                    }])
                    .await?;
                Ok(format!("Webhook endpoint {id} deleted"))
            }
        },
        Err(err) => Err(err.into()),
    }
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
        pk: partition(&caller.organization_id),
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
            pk: partition(organization_id),
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
