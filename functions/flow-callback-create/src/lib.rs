//! `POST /v1/flows/{flow}/callbacks`: Create a trigger URL (201); the answer is the only one with the full URL. Honours `Idempotency-Key`.

use flowline_core::flow_callbacks;
use flowline_core::flows::FlowRef;
use flowline_core::http::StatusCode;
use flowline_core::idempotency::{Created, create_once};
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let flow = request.path_param("flow");
    // Checked before it scopes the idempotency record: a path segment reaches no key unchecked.
    FlowRef::parse(flow)?;
    create_once(
        app,
        &request,
        caller,
        // Scoped to the flow of the path: the same key on another flow is another request.
        &format!("POST /v1/flows/{flow}/callbacks"),
        &body,
        || async {
            let trigger = flow_callbacks::create(app, caller, flow, body.clone()).await?;
            let resource_id = trigger.id.clone();
            Ok(Created {
                response: trigger.response(StatusCode::CREATED),
                resource_id,
            })
        },
        // A replay shows the URL masked: the signature was shown once, to the first answer.
        move |id: String| async move {
            let trigger = flow_callbacks::get(app, caller, flow, &id).await?;
            Ok(trigger.response(StatusCode::CREATED))
        },
    )
    .await
}
