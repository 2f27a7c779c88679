//! `POST /v1/callbacks/{id}/outcome`: how the call went; may schedule the next attempt
//! (`retry_policy`) or put the number on the do-not-call list (`opt_out`).

use flowline_core::callbacks::outcome;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let body = request.json_object()?;
    let callback = outcome::report(app, caller, request.path_param("id"), body).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &callback))
}
