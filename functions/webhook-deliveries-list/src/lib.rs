//! `GET /v1/webhooks/{id}/deliveries`: An endpoint's deliveries, newest first; filters `status`, `event_type`; paginated by `limit`.

use flowline_core::webhooks::deliveries::{self, DeliveryFilters, DeliveryStatus};
use flowline_core::webhooks::{EVENT_TYPES, EventType};
use flowline_core::{ApiError, ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&["status", "event_type", "limit", "next_page_token"])?;
    let status = query
        .get("status")
        .map(|text| {
            serde_json::from_value::<DeliveryStatus>(text.to_ascii_lowercase().into()).map_err(
                |_| ApiError::invalid_field("status", "must be one of: pending, succeeded, failed"),
            )
        })
        .transpose()?;
    let event_type = query
        .get("event_type")
        .map(|text| {
            text.parse::<EventType>().map_err(|()| {
                ApiError::invalid_field(
                    "event_type",
                    format!("must be one of: {}", EVENT_TYPES.join(", ")),
                )
            })
        })
        .transpose()?;
    let limit = query.integer("limit", 1..=100, 25)?;
    let filters = DeliveryFilters { status, event_type };
    let page = deliveries::list(
        app,
        caller,
        request.path_param("id"),
        filters,
        limit,
        query.page_token(),
    )
    .await?;
    let mut body = serde_json::json!({ "deliveries": page.items });
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = token.into();
    }
    Ok(ApiResponse::ok(&body))
}
