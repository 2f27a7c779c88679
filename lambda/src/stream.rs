//! The table's DynamoDB Stream as the `deliver` function receives it: a batch of records, of
//! which the outbox items (`OUTBOX#…`, written or nudged) are handed to the core's worker.
//! The answer reports the records that failed (`ReportBatchItemFailures`): Lambda retries the
//! batch from the first of them, and the records before it are never handed out again.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use flowline_adapters::dynamodb::read_item;
use flowline_core::store::Item;
use flowline_core::webhooks::outbox;

pub use aws_lambda_events::event::dynamodb::Event as StreamBatch;
pub use aws_lambda_events::event::streams::DynamoDbEventResponse as BatchResponse;

/// One record of a batch that carries outbox work.
pub struct OutboxRecord {
    /// Its sequence number: what a failure report names.
    pub sequence_number: String,
    /// The item as written, or why it cannot be read.
    pub item: Result<Item, String>,
}

/// The outbox records of a batch, in order; other records (removals, other items) are skipped.
pub fn outbox_records(batch: Event) -> Vec<OutboxRecord> {
    batch
        .records
        .into_iter()
        .filter_map(outbox_record)
        .collect()
}

fn outbox_record(record: EventRecord) -> Option<OutboxRecord> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let change = record.change;
    let image: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        change.new_image.into();
    let is_outbox = matches!(
        image.get("pk"),
        Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) if outbox::is_outbox_key(pk)
    );
    if !is_outbox {
        return None;
    }
    Some(OutboxRecord {
        sequence_number: change.sequence_number.unwrap_or_default(),
        item: read_item(image).map_err(|err| err.to_string()),
    })
}

/// The answer that reports `failed` (sequence numbers) for retry.
pub fn batch_response(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for sequence_number in failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}
