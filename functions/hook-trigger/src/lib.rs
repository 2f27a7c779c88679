//! `POST /v1/hooks/{id}`: A trigger URL, called without an API key: schedules (or starts) a callback for its flow and answers in its format (`json`, `xml`, `txt`), errors included.

use flowline_core::flow_callbacks::trigger;
use flowline_core::{ApiRequest, ApiResponse, ApiResult, App};

/// Every outcome is an answer in the trigger's format, so this never returns `Err`.
pub async fn handle(app: &App, request: ApiRequest) -> ApiResult<ApiResponse> {
    Ok(trigger::trigger(app, &request).await)
}
