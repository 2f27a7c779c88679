//! `POST /v1/flows/{flow}/versions`: A new `DRAFT` copied from the current version (or `from_version`); 409 if a draft exists.

use flowline_core::flows::{FlowRef, service};
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    // This route takes no query parameters, and unknown ones are refused (SPEC §1).
    request.query_params(&[])?;
    let reference = FlowRef::parse(request.path_param("flow"))?;
    let flow =
        service::create_version(app, caller, &reference, request.json_object_or_empty()?).await?;
    Ok(ApiResponse::resource(StatusCode::CREATED, &flow))
}
