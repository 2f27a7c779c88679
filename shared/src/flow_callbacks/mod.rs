//! Flow callbacks (SPEC §3): trigger URLs on a flow, through which a system without an API key
//! schedules a callback for that flow. The URL carries a signature: 32 random bytes, of which
//! only the SHA-256 is stored, so the full URL is shown once (on create, and after a rotation).
//!
//! Table layout: the trigger is one item `FCB#<id>` / `FLOW_CALLBACK` (the trigger route finds it
//! by id alone); the flow's partition lists it under the sort key `FCB#<id>`. When it was last
//! triggered is a second item of its partition, `FCB#<id>` / `TRIGGERED`, written blind by every
//! trigger: calls never change the trigger's revision, so deleting, deactivating or rotating it
//! (conditional on that revision) always succeeds while it is being called.

pub mod format;
pub mod trigger;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use self::format::{FORMATS, Format};
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::optimistic;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Field, FieldReader};
use crate::flows::FlowRef;
use crate::http::{check_if_match, etag_of};
use crate::ids;
use crate::page::PageScope;
use crate::store::{Expect, Item, Key, Query, SortRange, Write};
use crate::time::rfc3339;

pub const ID_PREFIX: &str = "fcb_";
/// What `url` shows in place of the signature after the create (and rotation) answer.
pub const MASKED: &str = "****";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerStatus {
    Active,
    Inactive,
}

/// A trigger as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowCallback {
    pub id: String,
    pub organization_id: String,
    pub flow: String,
    pub status: TriggerStatus,
    pub format: Format,
    pub description: Option<String>,
    /// Hex SHA-256 of the signature.
    pub signature_hash: String,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub last_triggered_at: Option<Timestamp>,
}

/// A trigger as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowCallbackView {
    pub id: String,
    pub flow: String,
    pub status: TriggerStatus,
    pub format: Format,
    pub description: Option<String>,
    pub url: String,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    #[serde(with = "rfc3339::option")]
    pub last_triggered_at: Option<Timestamp>,
}

impl FlowCallbackView {
    /// `signature`: the plaintext, only right after it was made; otherwise masked.
    pub fn new(app: &App, trigger: FlowCallback, signature: Option<&str>) -> Self {
        let url = format!(
            "{}/v1/hooks/{}?signature={}",
            app.config.public_base_url,
            trigger.id,
            signature.unwrap_or(MASKED)
        );
        Self {
            id: trigger.id,
            flow: trigger.flow,
            status: trigger.status,
            format: trigger.format,
            description: trigger.description,
            url,
            created_at: trigger.created_at,
            updated_at: trigger.updated_at,
            last_triggered_at: trigger.last_triggered_at,
        }
    }
}

impl FlowCallbackView {
    /// The view as every answer but the create's (and a rotation's) shows it.
    fn masked(&self) -> Self {
        let base = self.url.split("?signature=").next().unwrap_or_default();
        Self {
            url: format!("{base}?signature={MASKED}"),
            ..self.clone()
        }
    }

    /// The `ETag` of the trigger: of its masked view, so the create's answer (full URL) and a
    /// later read agree, and `If-Match` takes either.
    pub fn etag(&self) -> String {
        etag_of(&self.masked())
    }

    /// The answer for this trigger, with its [`etag`](Self::etag).
    pub fn response(&self, status: http::StatusCode) -> crate::http::ApiResponse {
        crate::http::ApiResponse::resource(status, self)
            .with_header(http::header::ETAG, &self.etag())
    }
}

pub fn signature_hash(signature: &str) -> String {
    crate::ids::sha256_hex(signature.as_bytes())
}

fn new_signature() -> String {
    URL_SAFE_NO_PAD.encode(ids::random_bytes::<32>())
}

fn partition(id: &str) -> String {
    format!("FCB#{id}")
}

pub(crate) fn item_key(id: &str) -> Key {
    Key::new(partition(id), "FLOW_CALLBACK")
}

/// When the trigger was last called: `{"last_triggered_at"}`.
pub(crate) fn triggered_key(id: &str) -> Key {
    Key::new(partition(id), "TRIGGERED")
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Triggered {
    #[serde(with = "rfc3339")]
    pub last_triggered_at: Timestamp,
}

/// The trigger with when it was last called (from its `TRIGGERED` item, if any).
fn with_last_triggered(mut trigger: FlowCallback, triggered: Option<&Item>) -> FlowCallback {
    if let Some(triggered) = triggered.and_then(|item| item.decode::<Triggered>().ok()) {
        trigger.last_triggered_at = Some(triggered.last_triggered_at);
    }
    trigger
}

fn entry_key(organization_id: &str, flow: &str, id: &str) -> Key {
    Key::new(
        format!("ORG#{organization_id}#FLOW#{flow}"),
        format!("FCB#{id}"),
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("Flow callback")
}

/// The slug `{flow}` names, if it is the caller's flow.
async fn flow_slug(app: &App, caller: &Caller, flow: &str) -> ApiResult<String> {
    crate::flows::service::slug_of(app, &caller.organization_id, &FlowRef::parse(flow)?).await
}

/// The caller's trigger `id` on `flow`, with its revision.
async fn load(app: &App, caller: &Caller, flow: &str, id: &str) -> ApiResult<(FlowCallback, u64)> {
    if !ids::is_id(id, ID_PREFIX) {
        return Err(not_found());
    }
    let slug = flow_slug(app, caller, flow).await?;
    // Both items of its partition in one query: the trigger and when it was last called.
    let items = app.store.query(&Query::partition(partition(id))).await?;
    let item = items
        .iter()
        .find(|item| item.key == item_key(id))
        .ok_or_else(not_found)?;
    let triggered = items.iter().find(|item| item.key == triggered_key(id));
    let trigger = with_last_triggered(item.decode()?, triggered);
    if trigger.organization_id != caller.organization_id || trigger.flow != slug {
        return Err(not_found());
    }
    Ok((trigger, item.rev))
}

struct TriggerFields {
    status: Option<TriggerStatus>,
    format: Option<Format>,
    description: Field<String>,
    rotate_signature: bool,
}

fn read_fields(body: Map<String, Value>, creating: bool) -> ApiResult<TriggerFields> {
    let mut fields = FieldReader::new(body);
    for name in [
        "id",
        "flow",
        "url",
        "created_at",
        "updated_at",
        "last_triggered_at",
    ] {
        fields.refuse(name, "is read-only");
    }
    let status = fields.choice::<TriggerStatus>("status", &["active", "inactive"]);
    let format = fields.choice::<Format>("format", FORMATS);
    let description = fields.string("description", 500);
    let rotate_signature = if creating {
        fields.refuse("rotate_signature", "applies to an update");
        false
    } else {
        fields
            .boolean("rotate_signature")
            .into_option()
            .unwrap_or(false)
    };
    for (name, is_null) in [
        ("status", status == Field::Null),
        ("format", format == Field::Null),
    ] {
        if is_null {
            fields.problem(name, "must not be null");
        }
    }
    fields.finish()?;
    Ok(TriggerFields {
        status: status.into_option(),
        format: format.into_option(),
        description,
        rotate_signature,
    })
}

/// `POST /v1/flows/{flow}/callbacks`: the answer carries the full URL, once.
pub async fn create(
    app: &App,
    caller: &Caller,
    flow: &str,
    body: Map<String, Value>,
) -> ApiResult<FlowCallbackView> {
    let fields = read_fields(body, true)?;
    let slug = flow_slug(app, caller, flow).await?;
    let now = app.clock.now();
    let signature = new_signature();
    let trigger = FlowCallback {
        id: ids::new_id(ID_PREFIX, now.as_millisecond()),
        organization_id: caller.organization_id.clone(),
        flow: slug,
        status: fields.status.unwrap_or(TriggerStatus::Active),
        format: fields.format.unwrap_or_default(),
        description: fields.description.into_option(),
        signature_hash: signature_hash(&signature),
        created_at: now,
        updated_at: now,
        last_triggered_at: None,
    };
    let writes = vec![
        Write::put(item_key(&trigger.id), &trigger, Expect::Absent)?,
        Write::put(
            entry_key(&trigger.organization_id, &trigger.flow, &trigger.id),
            &serde_json::json!({}),
            Expect::Absent,
        )?,
    ];
    app.store.write(writes).await?;
    Ok(FlowCallbackView::new(app, trigger, Some(&signature)))
}

pub async fn get(app: &App, caller: &Caller, flow: &str, id: &str) -> ApiResult<FlowCallbackView> {
    let (trigger, _) = load(app, caller, flow, id).await?;
    Ok(FlowCallbackView::new(app, trigger, None))
}

/// `PUT …/callbacks/{callback}`: `status`, `format`, `description`, `rotate_signature` (which
/// kills the old URL at once and shows the new one in this answer).
pub async fn update(
    app: &App,
    caller: &Caller,
    flow: &str,
    id: &str,
    body: Map<String, Value>,
    if_match: Option<&str>,
) -> ApiResult<FlowCallbackView> {
    let fields = read_fields(body, false)?;
    let fields = &fields;
    optimistic(move || async move {
        let (mut trigger, rev) = load(app, caller, flow, id).await?;
        check_if_match(
            if_match,
            &etag_of(&FlowCallbackView::new(app, trigger.clone(), None)),
        )?;
        if let Some(status) = fields.status {
            trigger.status = status;
        }
        if let Some(format) = fields.format {
            trigger.format = format;
        }
        match &fields.description {
            Field::Set(text) => trigger.description = Some(text.clone()),
            Field::Null => trigger.description = None,
            Field::Absent => {}
        }
        let signature = fields.rotate_signature.then(new_signature);
        if let Some(signature) = &signature {
            trigger.signature_hash = signature_hash(signature);
        }
        trigger.updated_at = app.clock.now();
        app.store
            .write(vec![Write::put(
                item_key(id),
                &trigger,
                Expect::Revision(rev),
            )?])
            .await?;
        Ok(FlowCallbackView::new(app, trigger, signature.as_deref()))
    })
    .await
}

pub async fn delete(app: &App, caller: &Caller, flow: &str, id: &str) -> ApiResult<String> {
    let (trigger, rev) = load(app, caller, flow, id).await?;
    let writes = vec![
        Write::Delete {
            key: item_key(id),
            expect: Expect::Revision(rev),
        },
        Write::Delete {
            key: entry_key(&trigger.organization_id, &trigger.flow, id),
            expect: Expect::Anything,
        },
        Write::Delete {
            key: triggered_key(id),
            expect: Expect::Anything,
        },
    ];
    app.store.write(writes).await?;
    Ok(format!(
        "Flow callback {id} deleted; its URL no longer works"
    ))
}

#[derive(Debug, Serialize)]
pub struct FlowCallbackList {
    pub callbacks: Vec<FlowCallbackView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /v1/flows/{flow}/callbacks`: newest first.
pub async fn list(
    app: &App,
    caller: &Caller,
    flow: &str,
    limit: u32,
    page_token: Option<&str>,
) -> ApiResult<FlowCallbackList> {
    let slug = flow_slug(app, caller, flow).await?;
    let scope =
        PageScope::new("flow_callbacks", &caller.organization_id).filter("flow", Some(&slug));
    let tokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let limit = limit as usize;
    let query = Query {
        pk: format!("ORG#{}#FLOW#{slug}", caller.organization_id),
        range: SortRange::Prefix("FCB#".to_owned()),
        after,
        descending: true,
        limit: limit + 1,
    };
    let (entries, next) = crate::store::split_page(app.store.query(&query).await?, limit);
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.key.sk.strip_prefix("FCB#"))
        .collect();
    // Each trigger and its `TRIGGERED` item, side by side.
    let keys: Vec<Key> = ids
        .iter()
        .flat_map(|id| [item_key(id), triggered_key(id)])
        .collect();
    let items = app.store.get_many(&keys).await?;
    let mut callbacks = Vec::with_capacity(ids.len());
    for pair in items.chunks(2) {
        if let [Some(item), triggered] = pair {
            let trigger = with_last_triggered(item.decode()?, triggered.as_ref());
            callbacks.push(FlowCallbackView::new(app, trigger, None));
        }
    }
    Ok(FlowCallbackList {
        callbacks,
        next_page_token: next.map(|position| tokens.issue(&scope, &position, now)),
    })
}
