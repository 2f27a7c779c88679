//! `POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver`: One more try of a delivery, soon, with the same `webhook-id` (202). Never changes a callback.

use flowline_core::fields::FieldReader;
use flowline_core::http::StatusCode;
use flowline_core::webhooks::deliveries;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.writer()?;
    request.query_params(&[])?;
    FieldReader::new(request.json_object_or_empty()?).finish()?;
    let delivery = deliveries::redeliver(
        app,
        caller,
        request.path_param("id"),
        request.path_param("delivery"),
    )
    .await?;
    Ok(ApiResponse::json(StatusCode::ACCEPTED, &delivery))
}
