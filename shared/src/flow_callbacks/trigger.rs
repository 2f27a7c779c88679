//! `POST /v1/hooks/{id}?signature=…`: no API key, the signature authenticates. Schedules a
//! callback for the trigger's flow (or dispatches it at once) and answers in the trigger's
//! format. An unknown id and a wrong signature get the same 404, in JSON (the format would tell
//! that the id exists), after the same work: one read and one constant-time comparison.

use http::StatusCode;
use subtle::ConstantTimeEq;

use super::format::{Format, render_callback, render_error};
use super::{FlowCallback, TriggerStatus, Triggered, item_key, signature_hash, triggered_key};
use crate::app::App;
use crate::auth::{Caller, KeyKind};
use crate::callbacks::{input, service};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiRequest, ApiResponse};
use crate::idempotency::{Created, create_once};
use crate::ids;
use crate::ratelimit::Budget;
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
    // A source that has been sending wrong signatures is refused before its call costs a read.
    let source = Budget::BadSignature(
        request
            .source_ip
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
    );
    if let Err(err) = app.limiter.has_room(&source, app.clock.now()) {
        return render_error(Format::Json, &err);
    }
    // Twice at most: a trigger changed between this read and the callback's write (the create
    // is conditional on its revision) is read again — revoked, it refuses; otherwise (a new
    // description, say) the call goes through.
    for _ in 0..2 {
        let (trigger, rev) = match authenticate(app, id, query.get("signature")).await {
            Ok(found) => found,
            Err(err) => {
                if err.code == crate::error::ErrorCode::NotFound {
                    // Spent whatever the answer: only the next call is refused.
                    let _ = app.limiter.admit(&source, app.clock.now()).await;
                }
                return render_error(Format::Json, &err);
            }
        };
        let format = trigger.format;
        // Each trigger URL has its own budget: a hammered or leaked one starves no other.
        let budget = Budget::Trigger(trigger.id.clone());
        if let Err(err) = app.limiter.admit(&budget, app.clock.now()).await {
            return render_error(format, &err);
        }
        match schedule(app, request, &trigger, rev).await {
            Ok(response) => return response,
            Err(Raced) => continue,
            Err(Refused(err)) => return render_error(format, &err),
        }
    }
    let busy = ApiError::unavailable();
    render_error(Format::Json, &busy)
}

enum Failed {
    /// The trigger changed while the call ran.
    Raced,
    Refused(ApiError),
}
use Failed::{Raced, Refused};

impl From<ApiError> for Failed {
    fn from(err: ApiError) -> Self {
        Refused(err)
    }
}

async fn schedule(
    app: &App,
    request: &ApiRequest,
    trigger: &FlowCallback,
    rev: u64,
) -> Result<ApiResponse, Failed> {
    if trigger.status == TriggerStatus::Inactive {
        return Err(Refused(ApiError::forbidden("This trigger URL is inactive")));
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
            // Only while the trigger is as authenticated: a revocation wins over calls in flight.
            let unchanged = Write::Check {
                key: item_key(&trigger.id),
                expect: Expect::Revision(rev),
            };
            let callback =
                service::create_guarded(app, &caller.organization_id, new, vec![unchanged]).await?;
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
    .await;
    let response = match response {
        Ok(response) => response,
        // The guard's check failed: the trigger changed meanwhile.
        Err(err) if err.message == service::GUARD_FAILED => return Err(Raced),
        Err(err) => return Err(Refused(err)),
    };
    touch(app, trigger).await;
    Ok(response)
}

/// Records `last_triggered_at`: a blind write to the trigger's `TRIGGERED` item, never to the
/// trigger itself (whose revision its owner's changes are conditional on).
async fn touch(app: &App, trigger: &FlowCallback) {
    let triggered = Triggered {
        last_triggered_at: app.clock.now(),
    };
    let write = match Write::put(triggered_key(&trigger.id), &triggered, Expect::Anything) {
        Ok(write) => write,
        Err(_) => return,
    };
    if let Err(err) = app.store.write(vec![write]).await {
        tracing::info!(trigger = %trigger.id, %err, "last_triggered_at not recorded");
    }
}
