//! `GET /v1/webhooks/{id}/deliveries/{delivery}`: One delivery, with every try and the event as sent (`payload`).

use flowline_core::http::StatusCode;
use flowline_core::webhooks::deliveries;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    request.query_params(&[])?;
    let delivery = deliveries::get(
        app,
        caller,
        request.path_param("id"),
        request.path_param("delivery"),
    )
    .await?;
    Ok(ApiResponse::resource(StatusCode::OK, &delivery))
}
