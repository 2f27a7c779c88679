//! `POST /v1/callbacks/cancel`: cancels the scheduled callbacks matching `source_session_id`,
//! `to_number` and/or `flow`, up to 500 a call (`remaining` says to call again).

use flowline_core::callbacks::bulk;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let cancelled = bulk::cancel_matching(app, caller, body).await?;
    Ok(ApiResponse::json(StatusCode::OK, &cancelled))
}
