//! `GET /v1/flows/{flow}/callbacks/{callback}`: One trigger URL (signature masked).

use flowline_core::flow_callbacks;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    request.query_params(&[])?;
    let trigger = flow_callbacks::get(
        app,
        caller,
        request.path_param("flow"),
        request.path_param("callback"),
    )
    .await?;
    Ok(trigger.response(StatusCode::OK))
}
