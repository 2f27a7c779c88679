//! `POST /v1/webhooks`: Register an endpoint (201); its `secret` is shown only here. Honours `Idempotency-Key`.

use flowline_core::http::StatusCode;
use flowline_core::idempotency::{Created, create_once};
use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    let body = request.json_object()?;
    create_once(
        app,
        &request,
        caller,
        "POST /v1/webhooks",
        &body,
        || async {
            let endpoint = webhooks::create(app, caller, body.clone()).await?;
            let resource_id = endpoint.id.clone();
            Ok(Created {
                response: ApiResponse::resource(StatusCode::CREATED, &endpoint),
                resource_id,
            })
        },
        // A replay does not show the secret again: it was shown once, to the first answer.
        move |id: String| async move {
            let endpoint = webhooks::get(app, caller, &id).await?;
            Ok(ApiResponse::resource(StatusCode::CREATED, &endpoint))
        },
    )
    .await
}
