//! The `deliver` function: the outbox's reader in the cloud (SPEC §8). The table's DynamoDB
//! Stream brings each outbox item written (an event committed with its change, a redelivery,
//! a drain) or nudged by the sweeper; each is handed to the core's worker — fanned out to the
//! subscribed endpoints, tried once, retries scheduled — then removed. Records are handled
//! several at once; those that failed are reported (`ReportBatchItemFailures`) and come back
//! in the retried batch, while those that succeeded are skipped then (their item is gone, and
//! deliveries already made are never made twice).

use flowline_core::webhooks::{outbox, worker};
use flowline_core::{ApiResult, App};
use flowline_lambda::stream::{self, BatchResponse, OutboxRecord, StreamBatch};
use futures_util::StreamExt;

/// Records handled at once.
const IN_FLIGHT: usize = 16;

pub async fn handle(app: &App, batch: StreamBatch) -> ApiResult<BatchResponse> {
    let records = stream::outbox_records(batch);
    let failed: Vec<Option<String>> = futures_util::stream::iter(records)
        .map(|record| hand_out(app, record))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    Ok(stream::batch_response(
        failed.into_iter().flatten().collect(),
    ))
}

/// Hands out one record: `Some(sequence number)` when it must be retried.
async fn hand_out(app: &App, record: OutboxRecord) -> Option<String> {
    let item = match record.item {
        Ok(item) => item,
        Err(err) => {
            // Retrying cannot make it readable: logged, and left for nobody.
            tracing::error!(%err, "an outbox record could not be read; skipped");
            return None;
        }
    };
    let outboxed = match outbox::decode(&item) {
        Ok(outboxed) => outboxed,
        Err(err) => {
            tracing::error!(%err, "an outbox item could not be read; skipped");
            return None;
        }
    };
    match worker::handle(app, &item.key, outboxed).await {
        Ok(()) => None,
        Err(err) => {
            tracing::warn!(error = %err.message, "an outbox item failed; the stream retries it");
            Some(record.sequence_number)
        }
    }
}
