//! `POST /v1/callbacks/{id}/dispatch`: `scheduled` or `failed` → dispatch now, synchronously; answers the callback as it ended.

use flowline_core::callbacks::dispatch;
use flowline_core::fields::FieldReader;
use flowline_core::http::StatusCode;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    FieldReader::new(request.json_object_or_empty()?).finish()?;
    let callback = dispatch::dispatch_now(app, caller, request.path_param("id")).await?;
    Ok(ApiResponse::resource(StatusCode::OK, &callback))
}
