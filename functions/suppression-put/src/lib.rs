//! `PUT /v1/suppressions/{number}`: Put a number on the do-not-call list, or replace its entry (`reason`, `expires_at`). Honours `If-Match`.

use flowline_core::http::StatusCode;
use flowline_core::suppressions;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    // Both fields are optional: no body suppresses the number for good, without a reason.
    let body = request.json_object_or_empty()?;
    let suppression = suppressions::put_if_match(
        app,
        caller,
        request.path_param("number"),
        body,
        request.header("if-match")?,
    )
    .await?;
    Ok(ApiResponse::resource(StatusCode::OK, &suppression))
}
