//! `GET /v1/flows`: List flows (their current versions), newest change first, filtered and paginated.

use flowline_core::flows::service::{self, ListFlows};
use flowline_core::flows::store::FlowFilters;
use flowline_core::flows::{ChannelType, FlowStatus, FlowType};
use flowline_core::{ApiError, ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&[
        "status",
        "channel_type",
        "type",
        "page_size",
        "next_page_token",
    ])?;
    let status = query
        .get("status")
        .map(|text| {
            FlowStatus::from_filter(text).ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    "must be one of: draft, active (or published), archived",
                )
            })
        })
        .transpose()?;
    let channel_type = query
        .get("channel_type")
        .map(|text| {
            serde_json::from_value::<ChannelType>(text.to_ascii_lowercase().into()).map_err(|_| {
                ApiError::invalid_field(
                    "channel_type",
                    "must be one of: voice, chat, sms, video, in_app_chat",
                )
            })
        })
        .transpose()?;
    let flow_type = query
        .get("type")
        .map(|text| {
            serde_json::from_value::<FlowType>(text.to_ascii_uppercase().into()).map_err(|_| {
                ApiError::invalid_field(
                    "type",
                    "must be one of: ANNOUNCEMENT, BANNER, CARD, CHECKLIST, CUSTOM, FORM, SURVEY, TOUR",
                )
            })
        })
        .transpose()?;
    let list = ListFlows {
        filters: FlowFilters {
            status,
            channel_type,
            flow_type,
        },
        page_size: query.integer("page_size", 1..=100, 30)?,
        page_token: query.page_token(),
    };
    Ok(ApiResponse::ok(
        &service::list_flows(app, caller, list).await?,
    ))
}
