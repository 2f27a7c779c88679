//! `POST /v1/flows`: Create a flow: version 1, `DRAFT` (201). Honours `Idempotency-Key`.

use flowline_core::flows::{self, FlowRef, service};
use flowline_core::http::StatusCode;
use flowline_core::idempotency::{Created, create_once};
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    // This route takes no query parameters, and unknown ones are refused (SPEC §1).
    request.query_params(&[])?;
    let body = request.json_object()?;
    let fields = flows::read_flow_body(body.clone(), true)?;
    create_once(
        app,
        &request,
        caller,
        "POST /v1/flows",
        &body,
        move || async move {
            let flow = service::create_flow(app, caller, fields).await?;
            let resource_id = flow.id.to_string();
            Ok(Created {
                response: ApiResponse::resource(StatusCode::CREATED, &flow),
                resource_id,
            })
        },
        move |resource_id: String| async move {
            let id = resource_id
                .parse()
                .map_err(|_| flowline_core::ApiError::internal())?;
            let flow = service::get_flow(app, caller, &FlowRef::Id(id), None).await?;
            Ok(ApiResponse::resource(StatusCode::CREATED, &flow))
        },
    )
    .await
}
