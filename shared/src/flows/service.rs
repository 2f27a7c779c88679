//! The flow use cases behind the routes of SPEC §2.

use serde::Serialize;
use serde_json::{Map, Value};

use super::data::is_non_empty_mapping;
use super::input::FlowFields;
use super::model::{ChannelType, FlowHead, FlowStatus, FlowType, FlowVersion, FlowView, Listing};
use super::store::{self, FlowChange, FlowFilters, Loaded, MAX_FLOW_ID};
use crate::app::App;
use crate::auth::Caller;
use crate::concurrency::{Failure, optimistic};
use crate::error::{ApiError, ApiResult, FieldProblem};
use crate::fields::{Field, FieldReader};
use crate::http::{check_if_match, etag_of};
use crate::ids;
use crate::page::{MAX_PAGE_BYTES, PageScope, PageTokens, within_budget};

/// `{flow}` in a path: a slug (the flow) or a numeric id (one version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRef {
    Slug(String),
    Id(u64),
}

impl FlowRef {
    /// Anything else is a flow that does not exist: 404, whatever the text.
    pub fn parse(text: &str) -> ApiResult<Self> {
        if ids::is_flow_slug(text) {
            return Ok(Self::Slug(text.to_owned()));
        }
        if !text.is_empty()
            && text.len() <= 16
            && text.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = text.parse::<u64>()
            && (1..=MAX_FLOW_ID).contains(&id)
        {
            return Ok(Self::Id(id));
        }
        Err(flow_not_found())
    }
}

fn flow_not_found() -> ApiError {
    ApiError::not_found("Flow")
}

fn version_not_found(version: u32) -> ApiError {
    ApiError::not_found(&format!("Version {version} of this flow"))
}

/// The head of the flow and the version `reference` (and `version`) point at.
async fn resolve(
    app: &App,
    organization_id: &str,
    reference: &FlowRef,
    version: Option<u32>,
) -> ApiResult<(Loaded<FlowHead>, Loaded<FlowVersion>)> {
    let table = app.store.as_ref();
    let (slug, pinned) = match reference {
        FlowRef::Slug(slug) => (slug.clone(), version),
        FlowRef::Id(id) => {
            let (slug, at) = store::resolve_id(table, organization_id, *id)
                .await?
                .ok_or_else(flow_not_found)?;
            (slug, Some(at))
        }
    };
    let head = store::load_head(table, organization_id, &slug)
        .await?
        .ok_or_else(flow_not_found)?;
    let number = pinned.unwrap_or_else(|| head.value.current_version());
    let found = store::load_version(table, organization_id, &slug, number).await?;
    let found = found.ok_or_else(|| version_not_found(number))?;
    Ok((head, found))
}

fn code_snippet(base_url: &str, slug: &str) -> String {
    format!(
        "curl -X POST '{base_url}/v1/callbacks' \\\n  -H \"Authorization: Bearer $FLOWLINE_API_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"flow\": \"{slug}\", \"to_number\": \"+15551234567\", \"reason\": \"Customer asked to be called back\"}}'"
    )
}

/// The slug `reference` names, if it is a flow of the organization (reads no version).
pub async fn slug_of(app: &App, organization_id: &str, reference: &FlowRef) -> ApiResult<String> {
    let table = app.store.as_ref();
    let slug = match reference {
        FlowRef::Slug(slug) => slug.clone(),
        FlowRef::Id(id) => {
            store::resolve_id(table, organization_id, *id)
                .await?
                .ok_or_else(flow_not_found)?
                .0
        }
    };
    store::load_head(table, organization_id, &slug)
        .await?
        .ok_or_else(flow_not_found)?;
    Ok(slug)
}

/// The caller's organization's flow, as the API answers it.
pub async fn get_flow(
    app: &App,
    caller: &Caller,
    reference: &FlowRef,
    version: Option<u32>,
) -> ApiResult<FlowView> {
    let (head, found) = resolve(app, &caller.organization_id, reference, version).await?;
    Ok(FlowView::new(&head.value, found.value))
}

/// The `ACTIVE` version of a flow, which callbacks pin; `None` when the flow has none.
pub async fn active_version(
    app: &App,
    organization_id: &str,
    slug: &str,
) -> ApiResult<Option<FlowVersion>> {
    let table = app.store.as_ref();
    let Some(head) = store::load_head(table, organization_id, slug).await? else {
        return Err(flow_not_found());
    };
    let Some(active) = head.value.active() else {
        return Ok(None);
    };
    Ok(
        store::load_version(table, organization_id, slug, active.version)
            .await?
            .map(|v| v.value),
    )
}

fn listing_of(version: &FlowVersion) -> Listing {
    Listing {
        version: version.version,
        status: version.status,
        channel_type: version.channel_type,
        flow_type: version.flow_type,
        modified_ms: version.modified_at.as_millisecond(),
    }
}

/// After versions changed: list the flow by its current version, reading it if untouched.
async fn relist(app: &App, head: &mut FlowHead, changed: &[&FlowVersion]) -> Result<(), Failure> {
    let current = head.current_version();
    let listing = match changed.iter().find(|v| v.version == current) {
        Some(version) => listing_of(version),
        None => {
            let loaded = store::load_version(
                app.store.as_ref(),
                &head.organization_id,
                &head.slug,
                current,
            )
            .await?
            .ok_or(Failure::Raced)?;
            listing_of(&loaded.value)
        }
    };
    head.listing = listing;
    Ok(())
}

pub async fn create_flow(app: &App, caller: &Caller, fields: FlowFields) -> ApiResult<FlowView> {
    let now = app.clock.now();
    let table = app.store.as_ref();
    let slug = ids::new_flow_slug();
    let id = store::next_flow_id(table).await?;
    let mut entry_points = fields.entry_points.into_option().unwrap_or_default();
    for point in &mut entry_points {
        if point.entry_id.is_empty() {
            point.entry_id = ids::new_id("ep_", now.as_millisecond());
        }
    }
    let version = FlowVersion {
        id,
        slug: slug.clone(),
        version: 1,
        name: fields.name.unwrap_or_default(),
        description: fields.description.into_option(),
        flow_type: fields.flow_type.into_option().unwrap_or(FlowType::Custom),
        channel_type: fields
            .channel_type
            .into_option()
            .unwrap_or(ChannelType::Voice),
        status: FlowStatus::Draft,
        active: fields.active.into_option().unwrap_or(true),
        data_yaml: fields
            .data_yaml
            .into_option()
            .unwrap_or_else(|| "{}\n".to_owned()),
        targeting_logic: fields.targeting_logic.into_option(),
        entry_points,
        code_snippet: code_snippet(&app.config.public_base_url, &slug),
        created_at: now,
        modified_at: now,
        modified_by: caller.key_name.clone(),
        calling_window: fields.calling_window.into_option(),
        retry_policy: fields.retry_policy.into_option().unwrap_or_default(),
        dedupe: fields.dedupe.into_option().unwrap_or_default(),
    };
    let head = FlowHead {
        slug,
        organization_id: caller.organization_id.clone(),
        versions: vec![version.summary()],
        listing: listing_of(&version),
    };
    let change = FlowChange {
        before: None,
        head: head.clone(),
        versions: vec![(version.clone(), None)],
        also: Vec::new(),
    };
    store::commit(table, &caller.organization_id, change).await?;
    Ok(FlowView::new(&head, version))
}

/// The head item keeps every version's summary (about 100 bytes): this keeps it far below
/// DynamoDB's 400 KB item limit.
pub const MAX_VERSIONS: usize = 1000;

/// Fields an `ACTIVE` version still takes (SPEC §2).
const ACTIVE_EDITABLE: &[&str] = &[
    "name",
    "description",
    "active",
    "targeting_logic",
    "calling_window",
    "retry_policy",
    "dedupe",
];

pub async fn update_flow(
    app: &App,
    caller: &Caller,
    reference: &FlowRef,
    fields: FlowFields,
    if_match: Option<&str>,
) -> ApiResult<FlowView> {
    let organization_id = &caller.organization_id;
    let fields = &fields;
    optimistic(move || async move {
        let (before, found) = resolve(app, organization_id, reference, None).await?;
        // Rendering parses the YAML: only for an If-Match or an answer without a change.
        if if_match.is_some() {
            check_if_match(
                if_match,
                &etag_of(&FlowView::new(&before.value, found.value.clone())),
            )?;
        }
        let touched = fields.touched();
        match found.value.status {
            FlowStatus::Archived => {
                return Err(ApiError::conflict(
                    "An ARCHIVED version cannot be changed; create a new version",
                )
                .into());
            }
            FlowStatus::Active => {
                let locked: Vec<&str> = touched
                    .iter()
                    .copied()
                    .filter(|f| !ACTIVE_EDITABLE.contains(f))
                    .collect();
                if !locked.is_empty() {
                    return Err(ApiError::conflict(format!(
                        "An ACTIVE version only takes {}; create a new version to change {}",
                        ACTIVE_EDITABLE.join(", "),
                        locked.join(", ")
                    ))
                    .into());
                }
            }
            FlowStatus::Draft => {}
        }
        if touched.is_empty() {
            return Ok(FlowView::new(&before.value, found.value));
        }
        let mut version = found.value.clone();
        apply_fields(
            &mut version,
            fields.clone(),
            app.clock.now().as_millisecond(),
        );
        version.modified_at = app.clock.now();
        version.modified_by = caller.key_name.clone();
        let mut head = before.value.clone();
        head.record(&version);
        relist(app, &mut head, &[&version]).await?;
        let change = FlowChange {
            before: Some(before),
            head: head.clone(),
            versions: vec![(version.clone(), Some(found.rev))],
            also: Vec::new(),
        };
        store::commit(app.store.as_ref(), organization_id, change).await?;
        Ok(FlowView::new(&head, version))
    })
    .await
}

fn apply_fields(version: &mut FlowVersion, fields: FlowFields, now_ms: i64) {
    if let Some(name) = fields.name {
        version.name = name;
    }
    let FlowFields {
        description,
        flow_type,
        channel_type,
        active,
        data_yaml,
        targeting_logic,
        entry_points,
        calling_window,
        retry_policy,
        dedupe,
        ..
    } = fields;
    match calling_window {
        Field::Set(window) => version.calling_window = Some(window),
        Field::Null => version.calling_window = None,
        Field::Absent => {}
    }
    if let Field::Set(policy) = retry_policy {
        version.retry_policy = policy;
    }
    if let Field::Set(dedupe) = dedupe {
        version.dedupe = dedupe;
    }
    match description {
        Field::Set(text) => version.description = Some(text),
        Field::Null => version.description = None,
        Field::Absent => {}
    }
    if let Field::Set(flow_type) = flow_type {
        version.flow_type = flow_type;
    }
    if let Field::Set(channel_type) = channel_type {
        version.channel_type = channel_type;
    }
    if let Field::Set(active) = active {
        version.active = active;
    }
    match data_yaml {
        Field::Set(yaml) => version.data_yaml = yaml,
        Field::Null => version.data_yaml = "{}\n".to_owned(),
        Field::Absent => {}
    }
    match targeting_logic {
        Field::Set(text) => version.targeting_logic = Some(text),
        Field::Null => version.targeting_logic = None,
        Field::Absent => {}
    }
    match entry_points {
        Field::Set(mut points) => {
            for point in &mut points {
                if point.entry_id.is_empty() {
                    point.entry_id = ids::new_id("ep_", now_ms);
                }
            }
            version.entry_points = points;
        }
        Field::Null => version.entry_points = Vec::new(),
        Field::Absent => {}
    }
}

/// `version`, archived now by `caller`.
fn archived(mut version: FlowVersion, now: jiff::Timestamp, caller: &Caller) -> FlowVersion {
    version.status = FlowStatus::Archived;
    version.modified_at = now;
    version.modified_by = caller.key_name.clone();
    version
}

/// `DELETE /v1/flows/{flow}`: a slug archives every version, an id that version.
pub async fn archive_flow(app: &App, caller: &Caller, reference: &FlowRef) -> ApiResult<String> {
    let organization_id = &caller.organization_id;
    optimistic(move || async move {
        let (before, found) = resolve(app, organization_id, reference, None).await?;
        let targets: Vec<u32> = match reference {
            FlowRef::Slug(_) => before
                .value
                .versions
                .iter()
                .filter(|v| v.status != FlowStatus::Archived)
                .map(|v| v.version)
                .collect(),
            FlowRef::Id(_) if found.value.status == FlowStatus::Archived => Vec::new(),
            FlowRef::Id(_) => vec![found.value.version],
        };
        let message = match reference {
            FlowRef::Slug(slug) => format!("Flow {slug} archived"),
            FlowRef::Id(id) => format!("Flow version {id} archived"),
        };
        if targets.is_empty() {
            return Ok(message);
        }
        let now = app.clock.now();
        let mut head = before.value.clone();
        let mut changed = Vec::new();
        for number in targets {
            let loaded = if number == found.value.version {
                found.clone()
            } else {
                store::load_version(app.store.as_ref(), organization_id, &head.slug, number)
                    .await?
                    .ok_or(Failure::Raced)?
            };
            let version = archived(loaded.value, now, caller);
            head.record(&version);
            changed.push((version, Some(loaded.rev)));
        }
        let refs: Vec<&FlowVersion> = changed.iter().map(|(v, _)| v).collect();
        relist(app, &mut head, &refs).await?;
        store::commit(
            app.store.as_ref(),
            organization_id,
            FlowChange {
                before: Some(before),
                head,
                versions: changed,
                also: Vec::new(),
            },
        )
        .await?;
        Ok(message)
    })
    .await
}

/// `POST /v1/flows/{flow}/versions`: a new draft, copied from the current (or a given) version.
pub async fn create_version(
    app: &App,
    caller: &Caller,
    reference: &FlowRef,
    body: Map<String, Value>,
) -> ApiResult<FlowView> {
    let mut fields = FieldReader::new(body);
    let from_version = fields
        .integer("from_version", 1..=u32::MAX as i64)
        .into_option()
        .map(|v| v as u32);
    fields.finish()?;
    let organization_id = &caller.organization_id;
    // A draft already there is the common refusal: answer it before taking a flow id.
    let (before, _) = resolve(app, organization_id, reference, None).await?;
    if before.value.versions.len() >= MAX_VERSIONS {
        return Err(ApiError::conflict(format!(
            "A flow has at most {MAX_VERSIONS} versions; create a new flow"
        )));
    }
    if let Some(draft) = before.value.draft() {
        return Err(ApiError::conflict(format!(
            "Version {} is already a draft; publish or archive it first",
            draft.version
        )));
    }
    let id = store::next_flow_id(app.store.as_ref()).await?;
    optimistic(move || async move {
        let (before, current) = resolve(app, organization_id, reference, None).await?;
        if let Some(draft) = before.value.draft() {
            return Err(ApiError::conflict(format!(
                "Version {} is already a draft; publish or archive it first",
                draft.version
            ))
            .into());
        }
        let source = match from_version {
            Some(number) if number != current.value.version => {
                store::load_version(
                    app.store.as_ref(),
                    organization_id,
                    &before.value.slug,
                    number,
                )
                .await?
                .ok_or_else(|| version_not_found(number))?
                .value
            }
            _ => current.value.clone(),
        };
        let now = app.clock.now();
        let version = FlowVersion {
            id,
            version: before.value.highest_version() + 1,
            status: FlowStatus::Draft,
            created_at: now,
            modified_at: now,
            modified_by: caller.key_name.clone(),
            ..source
        };
        let mut head = before.value.clone();
        head.record(&version);
        relist(app, &mut head, &[&version]).await?;
        let change = FlowChange {
            before: Some(before),
            head: head.clone(),
            versions: vec![(version.clone(), None)],
            also: Vec::new(),
        };
        store::commit(app.store.as_ref(), organization_id, change).await?;
        Ok(FlowView::new(&head, version))
    })
    .await
}

/// `POST /v1/flows/{flow}/publish`: the draft (or a given version: a rollback) becomes
/// `ACTIVE`, the previous `ACTIVE` version `ARCHIVED`, in one transaction.
pub async fn publish(
    app: &App,
    caller: &Caller,
    reference: &FlowRef,
    body: Map<String, Value>,
) -> ApiResult<FlowView> {
    let mut fields = FieldReader::new(body);
    let requested = fields
        .integer("version", 1..=u32::MAX as i64)
        .into_option()
        .map(|v| v as u32);
    fields.finish()?;
    let organization_id = &caller.organization_id;
    let published = optimistic(move || async move {
        let (before, named) = resolve(app, organization_id, reference, None).await?;
        let slug = before.value.slug.clone();
        // A numeric id names one version, so publishing it publishes that version (as PUT and
        // DELETE act on the version an id names) rather than whatever draft the flow has.
        let requested = match (reference, requested) {
            (FlowRef::Id(_), None) => Some(named.value.version),
            (FlowRef::Id(_), Some(number)) if number != named.value.version => {
                return Err(ApiError::invalid_field(
                    "version",
                    "names another version than the numeric id in the path; use the slug",
                )
                .into());
            }
            (_, requested) => requested,
        };
        let target = match requested {
            Some(number) => before
                .value
                .summary(number)
                .ok_or_else(|| version_not_found(number))?
                .clone(),
            None => before
                .value
                .draft()
                .ok_or_else(|| {
                    ApiError::conflict(
                        "There is no draft to publish; name a version to roll back to",
                    )
                })?
                .clone(),
        };
        if target.status == FlowStatus::Active {
            return Err(ApiError::conflict(format!(
                "Version {} is already ACTIVE",
                target.version
            ))
            .into());
        }
        let table = app.store.as_ref();
        let loaded = store::load_version(table, organization_id, &slug, target.version)
            .await?
            .ok_or(Failure::Raced)?;
        if !is_non_empty_mapping(&loaded.value.data_yaml) {
            return Err(ApiError::validation(vec![FieldProblem::new(
                "data",
                format!(
                    "version {} cannot be published: its data must be a non-empty mapping",
                    target.version
                ),
            )])
            .into());
        }
        let now = app.clock.now();
        let mut head = before.value.clone();
        let mut changed = Vec::new();
        if let Some(active) = before.value.active() {
            let previous = store::load_version(table, organization_id, &slug, active.version)
                .await?
                .ok_or(Failure::Raced)?;
            let archived = archived(previous.value, now, caller);
            head.record(&archived);
            changed.push((archived, Some(previous.rev)));
        }
        let mut version = loaded.value;
        version.status = FlowStatus::Active;
        version.modified_at = now;
        version.modified_by = caller.key_name.clone();
        head.record(&version);
        head.listing = listing_of(&version);
        changed.push((version.clone(), Some(loaded.rev)));
        let published = FlowView::new(&head, version);
        // `flow.published`, in the transaction that publishes.
        let event = crate::webhooks::outbox::event(
            organization_id,
            crate::webhooks::EventType::FlowPublished,
            serde_json::json!({ "flow": &published }),
            now,
        )?;
        store::commit(
            table,
            organization_id,
            FlowChange {
                before: Some(before),
                head: head.clone(),
                versions: changed,
                also: vec![event],
            },
        )
        .await?;
        Ok(published)
    })
    .await?;
    Ok(published)
}

/// `GET /v1/flows` answer.
#[derive(Debug, Serialize)]
pub struct FlowList {
    pub flows: Vec<FlowView>,
    pub page_size: u32,
    pub total_records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

pub struct ListFlows<'a> {
    pub filters: FlowFilters,
    pub page_size: u32,
    pub page_token: Option<&'a str>,
}

fn flows_scope(caller: &Caller, filters: &FlowFilters) -> PageScope {
    PageScope::new("flows", &caller.organization_id)
        .filter("status", filters.status.map(|s| s.as_str()))
        .filter(
            "channel_type",
            filters
                .channel_type
                .as_ref()
                .map(super::model::serde_name)
                .as_deref(),
        )
        .filter(
            "type",
            filters
                .flow_type
                .as_ref()
                .map(super::model::serde_name)
                .as_deref(),
        )
}

pub async fn list_flows(app: &App, caller: &Caller, request: ListFlows<'_>) -> ApiResult<FlowList> {
    let scope = flows_scope(caller, &request.filters);
    let tokens: &PageTokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = request
        .page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let table = app.store.as_ref();
    let page = store::list_page(
        table,
        &caller.organization_id,
        &request.filters,
        after,
        request.page_size as usize,
    )
    .await?;
    let total_records = store::count(table, &caller.organization_id, &request.filters).await?;
    let views = page
        .flows
        .into_iter()
        .map(|(position, head, version)| (position, FlowView::new(&head, version)));
    let (flows, cut) = within_budget(views.collect(), MAX_PAGE_BYTES);
    Ok(FlowList {
        flows,
        page_size: request.page_size,
        total_records,
        next_page_token: cut
            .or(page.next)
            .map(|position| tokens.issue(&scope, &position, now)),
    })
}

/// `GET /v1/flows/{flow}/versions` answer.
#[derive(Debug, Serialize)]
pub struct FlowVersionList {
    pub flow_versions: Vec<FlowView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

pub async fn list_versions(
    app: &App,
    caller: &Caller,
    reference: &FlowRef,
    page_size: u32,
    page_token: Option<&str>,
) -> ApiResult<FlowVersionList> {
    let (head, _) = resolve(app, &caller.organization_id, reference, None).await?;
    let scope = PageScope::new("flow_versions", &caller.organization_id)
        .filter("flow", Some(&head.value.slug));
    let tokens = app.page_tokens()?;
    let now = app.clock.now();
    let after = page_token
        .map(|token| tokens.open(token, &scope, now))
        .transpose()?;
    let (versions, next) = store::versions_page(
        app.store.as_ref(),
        &caller.organization_id,
        &head.value.slug,
        after,
        page_size as usize,
    )
    .await?;
    let views = versions
        .into_iter()
        .map(|(position, version)| (position, FlowView::new(&head.value, version)));
    let (flow_versions, cut) = within_budget(views.collect(), MAX_PAGE_BYTES);
    Ok(FlowVersionList {
        flow_versions,
        next_page_token: cut
            .or(next)
            .map(|position| tokens.issue(&scope, &position, now)),
    })
}
