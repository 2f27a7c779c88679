//! `POST /v1/webhooks`: Register an endpoint (201); its `secret` is shown only here. Honours `Idempotency-Key`.

use flowline_core::http::StatusCode;
use flowline_core::idempotency::{Created, create_once};
use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
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
                response: endpoint.response(StatusCode::CREATED),
                resource_id,
            })
        },
        // A replay is the first answer again, secret included (SPEC §1: "returns the first 2xx
        // response again"): its client may never have seen that first answer.
        move |id: String| async move {
            let endpoint = webhooks::get_as_created(app, caller, &id).await?;
            Ok(endpoint.response(StatusCode::CREATED))
        },
    )
    .await
}
