//! `PUT /v1/flows/{flow}/callbacks/{callback}`: Change `status`, `format`, `description`; `rotate_signature` kills the old URL and shows the new one. Honours `If-Match`.

use flowline_core::flow_callbacks;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let (flow, id) = (request.path_param("flow"), request.path_param("callback"));
    let if_match = request.text_header("If-Match")?;
    let trigger = flow_callbacks::update(app, caller, flow, id, body, if_match).await?;
    Ok(trigger.response(StatusCode::OK))
}
