//! `POST /v1/callbacks/cancel` (SPEC §7): cancels the organization's `scheduled` callbacks that
//! match `source_session_id`, `to_number` and/or `flow`, at most [`MAX_PER_CALL`] a call, each
//! exactly as its own cancel route would (its event, its schedule deleted).
//!
//! The candidates come from an index that holds only scheduled callbacks — the number's entries
//! with `to_number`, else the `scheduled` list of the session and flow filters — so a call never
//! reads what it cannot cancel, and the next call starts again from the top: what this one
//! cancelled has left the index.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::Callback;
use super::service::cancel_one;
use super::store::{self, CallbackFilters};
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldProblem};
use crate::fields::{Field, FieldReader};
use crate::validate::is_e164;

/// Callbacks cancelled by one call at most (SPEC §7).
pub const MAX_PER_CALL: usize = 500;
/// Cancels in flight at once: each is a read, a transaction and a schedule deletion.
const AT_ONCE: usize = 16;

#[derive(Debug, Serialize)]
pub struct BulkCancelled {
    pub cancelled: Vec<String>,
    /// More matching callbacks are scheduled: call again.
    pub remaining: bool,
}

struct Filters {
    source_session_id: Option<String>,
    to_number: Option<String>,
    flow: Option<String>,
    reason: Option<String>,
}

impl Filters {
    fn matches(&self, callback: &Callback) -> bool {
        self.source_session_id
            .as_ref()
            .is_none_or(|session| callback.source_session_id.as_ref() == Some(session))
            && self
                .to_number
                .as_ref()
                .is_none_or(|number| &callback.to_number == number)
            && self.flow.as_ref().is_none_or(|flow| &callback.flow == flow)
    }
}

fn read(body: Map<String, Value>) -> ApiResult<Filters> {
    let mut fields = FieldReader::new(body);
    let source_session_id = fields
        .string("source_session_id", super::input::MAX_REFERENCE)
        .into_option();
    let to_number = fields
        .read("to_number", |value| match value {
            Value::String(number) if is_e164(&number) => Ok(number),
            _ => Err("must be an E.164 phone number like +15551234567".to_owned()),
        })
        .into_option();
    let flow = match fields.string("flow", 64) {
        Field::Set(flow) if crate::ids::is_flow_slug(&flow) => Some(flow),
        Field::Set(_) => {
            fields.problem("flow", "must be a flow's slug (flow_…)");
            None
        }
        _ => None,
    };
    let reason = fields
        .string("reason", super::input::MAX_REASON)
        .into_option();
    let mut problems = fields.into_problems();
    if problems.is_empty() && source_session_id.is_none() && to_number.is_none() && flow.is_none() {
        let message = "at least one of source_session_id, to_number and flow is required";
        problems = ["source_session_id", "to_number", "flow"]
            .into_iter()
            .map(|field| FieldProblem::new(field, message))
            .collect();
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(Filters {
        source_session_id,
        to_number,
        flow,
        reason,
    })
}

pub async fn cancel_matching(
    app: &App,
    caller: &Caller,
    body: Map<String, Value>,
) -> ApiResult<BulkCancelled> {
    let filters = read(body)?;
    let filters = &filters;
    let organization_id = &caller.organization_id;
    let list_filters = CallbackFilters {
        status: None,
        source_session_id: filters.source_session_id.clone(),
        flow: filters.flow.clone(),
    };
    let mut cancelled = Vec::new();
    let mut after = None;
    loop {
        let wanted = MAX_PER_CALL - cancelled.len();
        let (ids, next) = store::scheduled_ids(
            app.store.as_ref(),
            organization_id,
            filters.to_number.as_deref(),
            &list_filters,
            after,
            wanted,
        )
        .await?;
        let outcomes: Vec<ApiResult<(Callback, bool)>> = futures_util::stream::iter(ids)
            .map(|id: String| async move {
                let reason = filters.reason.clone();
                cancel_one(app, organization_id, &id, reason, |cb| filters.matches(cb)).await
            })
            .buffered(AT_ONCE)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok((callback, true)) => cancelled.push(callback.id),
                Ok((_, false)) => {}
                // Taken by a dispatcher meanwhile: no longer scheduled, so not ours to cancel.
                Err(err) if err.code == ErrorCode::Conflict => {}
                Err(err) => return Err(err),
            }
        }
        match next {
            Some(position) if cancelled.len() < MAX_PER_CALL => after = Some(position),
            Some(_) => {
                return Ok(BulkCancelled {
                    cancelled,
                    remaining: true,
                });
            }
            None => {
                return Ok(BulkCancelled {
                    cancelled,
                    remaining: false,
                });
            }
        }
    }
}
