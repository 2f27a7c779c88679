//! `DELETE /v1/flows/{flow}/callbacks/{callback}`: Delete a trigger URL; it stops working at once.

use flowline_core::flow_callbacks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    let message = flow_callbacks::delete(
        app,
        caller,
        request.path_param("flow"),
        request.path_param("callback"),
    )
    .await?;
    Ok(ApiResponse::message(message))
}
