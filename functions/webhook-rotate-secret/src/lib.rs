//! `POST /v1/webhooks/{id}/rotate-secret`: A new signing secret, shown only in this answer; for 24 hours deliveries carry the old secret's signature too.

use flowline_core::fields::FieldReader;
use flowline_core::http::StatusCode;
use flowline_core::webhooks;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    FieldReader::new(request.json_object_or_empty()?).finish()?;
    let endpoint = webhooks::rotate_secret(app, caller, request.path_param("id")).await?;
    Ok(endpoint.response(StatusCode::OK))
}
