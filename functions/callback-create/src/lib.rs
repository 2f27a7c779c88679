//! `POST /v1/callbacks`: Schedule a callback (201, `scheduled`); without `scheduled_at` it is dispatched within seconds. Honours `Idempotency-Key`.

use flowline_core::callbacks::{input, service};
use flowline_core::http::StatusCode;
use flowline_core::idempotency::{Created, create_once};
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    create_once(
        app,
        &request,
        caller,
        "POST /v1/callbacks",
        &body,
        // Validated inside: `scheduled_at` must be in the future now, but a replay of a request
        // that was valid when first made answers its callback whatever the time.
        || async {
            let new = input::read_new_callback(body.clone(), None, app.clock.now())?;
            let callback = service::create(app, &caller.organization_id, new).await?;
            let resource_id = callback.id.clone();
            Ok(Created {
                response: ApiResponse::resource(StatusCode::CREATED, &callback),
                resource_id,
            })
        },
        move |id: String| async move {
            let callback = service::get(app, caller, &id).await?;
            Ok(ApiResponse::resource(StatusCode::CREATED, &callback))
        },
    )
    .await
}
