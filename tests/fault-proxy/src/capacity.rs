//! DynamoDB's consumed capacity: the proxy asks for it on every request that can report it and
//! sums what the answers say, while the client sees the answer it asked for.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::call::Call;
use crate::counts::Counts;

/// The operations that take `ReturnConsumedCapacity`.
const REPORTING: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
];

/// The request body with `"ReturnConsumedCapacity": "TOTAL"`, when the operation takes it and
/// the client did not ask (absent or `NONE`); `None` leaves the body as it is. The body is no
/// longer the one the SDK signed: the emulator does not check signatures.
pub fn ask(call: &Call, body: &[u8]) -> Option<Bytes> {
    if call.service != "dynamodb" || !REPORTING.contains(&call.operation.as_str()) {
        return None;
    }
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let fields = doc.as_object_mut()?;
    if fields
        .get("ReturnConsumedCapacity")
        .is_some_and(|asked| asked != "NONE")
    {
        return None;
    }
    fields.insert("ReturnConsumedCapacity".to_owned(), json!("TOTAL"));
    Some(Bytes::from(doc.to_string()))
}

/// Counts a DynamoDB answer's `ConsumedCapacity`. When the proxy asked for it (`asked`), the
/// answer is given back without it, as DynamoDB answers a client that does not ask; `None`
/// keeps the answer as it is.
pub fn record(counts: &mut Counts, call: &Call, asked: bool, answer: &[u8]) -> Option<Bytes> {
    let mut doc: Value = serde_json::from_slice(answer).ok()?;
    let consumed = doc.get("ConsumedCapacity")?;
    counts.add_consumed(call, consumed);
    if !asked {
        return None;
    }
    doc.as_object_mut()?.remove("ConsumedCapacity");
    Some(Bytes::from(doc.to_string()))
}
