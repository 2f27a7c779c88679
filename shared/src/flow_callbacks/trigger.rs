//! `POST /v1/hooks/{id}?signature=…`: no API key, the signature authenticates. Schedules a
//! callback for the trigger's flow (or dispatches it at once) and answers in the trigger's
//! format. An unknown id and a wrong signature get the same 404, in JSON (the format would tell
//! that the id exists), after the same work: one read and one constant-time comparison.

use http::StatusCode;
use subtle::ConstantTimeEq;

use super::format::{Format, render_callback, render_error};
use super::{FlowCallback, TriggerStatus, item_key, signature_hash};
use crate::app::App;
use crate::auth::{Caller, KeyKind};
use crate::callbacks::{input, service};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiRequest, ApiResponse};
use crate::idempotency::{Created, create_once};
use crate::ids;
use crate::store::{Expect, Write};

fn not_found() -> ApiError {
    ApiError::not_found("Trigger")
}

/// The trigger `id`, if `signature` is its signature.
async fn authenticate(
    app: &App,
    id: &str,
    signature: Option<&str>,
) -> ApiResult<(FlowCallback, u64)> {
    let item = if ids::is_id(id, super::ID_PREFIX) {
        app.store.get(&item_key(id)).await?
    } else {
        None
    };
    // Compare even when there is nothing to compare with, so both failures cost the same.
    let presented = signature_hash(signature.unwrap_or_default());
    let expected = match &item {
        Some(item) => item.decode::<FlowCallback>()?.signature_hash,
        None => signature_hash("no trigger has this signature"),
    };
    let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    match item {
        Some(item) if matches && signature.is_some() => Ok((item.decode()?, item.rev)),
        _ => Err(not_found()),
    }
}

/// The whole route: every answer, including errors, in the trigger's format.
pub async fn trigger(app: &App, request: &ApiRequest) -> ApiResponse {
    let id = request.path_param("id");
    let query = match request.query_params(&["signature"]) {
        Ok(query) => query,
        Err(err) => return render_error(Format::Json, &err),
    };
    let (trigger, rev) = match authenticate(app, id, query.get("signature")).await {
        Ok(found) => found,
        Err(err) => return render_error(Format::Json, &err),
    };
    let format = trigger.format;
    match schedule(app, request, &trigger, rev).await {
        Ok(response) => response,
        Err(err) => render_error(format, &err),
    }
}

async fn schedule(
    app: &App,
    request: &ApiRequest,
    trigger: &FlowCallback,
    rev: u64,
) -> ApiResult<ApiResponse> {
    if trigger.status == TriggerStatus::Inactive {
        return Err(ApiError::forbidden("This trigger URL is inactive"));
    }
    let body = request.json_object()?;
    // Idempotency is kept per organization and per trigger.
    let caller = Caller {
        organization_id: trigger.organization_id.clone(),
        kind: KeyKind::Private,
        key_name: format!("trigger {}", trigger.id),
    };
    let route = format!("POST /v1/hooks/{}", trigger.id);
    let format = trigger.format;
    let caller = &caller;
    let response = create_once(
        app,
        request,
        caller,
        &route,
        &body,
        // Validated inside, as on `POST /v1/callbacks`: a replay wins over the time checks.
        || async {
            let new = input::read_new_callback(body.clone(), Some(&trigger.flow), app.clock.now())?;
            let callback = service::create(app, &caller.organization_id, new).await?;
            let resource_id = callback.id.clone();
            Ok(Created {
                response: render_callback(format, StatusCode::CREATED, &callback),
                resource_id,
            })
        },
        move |id: String| async move {
            let callback = service::get(app, caller, &id).await?;
            Ok(render_callback(format, StatusCode::CREATED, &callback))
        },
    )
    .await?;
    touch(app, trigger, rev).await;
    Ok(response)
}

/// Records `last_triggered_at`; a lost race means another trigger just recorded it.
async fn touch(app: &App, trigger: &FlowCallback, rev: u64) {
    let mut touched = trigger.clone();
    touched.last_triggered_at = Some(app.clock.now());
    let write = match Write::put(item_key(&trigger.id), &touched, Expect::Revision(rev)) {
        Ok(write) => write,
        Err(_) => return,
    };
    if let Err(err) = app.store.write(vec![write]).await {
        tracing::info!(trigger = %trigger.id, %err, "last_triggered_at not recorded");
    }
}
