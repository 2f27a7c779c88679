//! `GET /v1/callbacks`: List callbacks, newest first; filters `status`, `source_session_id`, `flow`; paginated by `limit`.

use flowline_core::callbacks::model::{CallbackStatus, STATUSES};
use flowline_core::callbacks::service;
use flowline_core::callbacks::store::CallbackFilters;
use flowline_core::{ApiError, ApiRequest, ApiResponse, ApiResult, App};

pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    let caller = request.caller()?;
    let query = request.query_params(&[
        "status",
        "source_session_id",
        "flow",
        "limit",
        "next_page_token",
    ])?;
    let status = query
        .get("status")
        .map(|text| {
            serde_json::from_value::<CallbackStatus>(text.to_ascii_lowercase().into()).map_err(
                |_| {
                    ApiError::invalid_field(
                        "status",
                        format!("must be one of: {}", STATUSES.join(", ")),
                    )
                },
            )
        })
        .transpose()?;
    let filters = CallbackFilters {
        status,
        source_session_id: query
            .get("source_session_id")
            .map(session_filter)
            .transpose()?,
        flow: query.get("flow").map(flow_filter).transpose()?,
    };
    let limit = query.integer("limit", 1..=100, 25)?;
    let list = service::list(app, caller, filters, limit, query.page_token()).await?;
    Ok(ApiResponse::ok(&list))
}

/// Only values a callback can have: anything else matches nothing, and might not fit a key.
fn session_filter(text: &str) -> ApiResult<String> {
    if text.chars().count() > flowline_core::callbacks::input::MAX_REFERENCE {
        return Err(ApiError::invalid_field(
            "source_session_id",
            "must be at most 255 characters",
        ));
    }
    Ok(text.to_owned())
}

fn flow_filter(text: &str) -> ApiResult<String> {
    if !flowline_core::ids::is_flow_slug(text) {
        return Err(ApiError::invalid_field(
            "flow",
            "must be a flow slug (flow_ and 12 letters or digits)",
        ));
    }
    Ok(text.to_owned())
}
