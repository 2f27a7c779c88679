//! What moto does not do and DynamoDB does: `TransactWriteItems` idempotency. A transaction
//! that carries a `ClientRequestToken` and succeeded is not applied again when the same token
//! comes back (within 10 minutes): DynamoDB answers the repeat with success, and answers
//! `IdempotentParameterMismatchException` if the repeat asks for something else. The proxy keeps
//! the tokens of the transactions it forwarded successfully and answers repeats itself, so a
//! client's retry after a lost answer behaves here as it would against DynamoDB.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use serde_json::Value;

use crate::call::Call;

#[derive(Default)]
pub(crate) struct Tokens {
    /// Token → the request it came with (without the token) and the answer it got.
    applied: Mutex<HashMap<String, (Value, Bytes)>>,
}

/// The token of a transaction request, and the request without it.
fn token_of(call: &Call, body: &[u8]) -> Option<(String, Value)> {
    if call.service != "dynamodb" || call.operation != "TransactWriteItems" {
        return None;
    }
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let token = request
        .as_object_mut()?
        .remove("ClientRequestToken")?
        .as_str()?
        .to_owned();
    // Capacity is the proxy's own addition, not part of what was asked.
    request.as_object_mut()?.remove("ReturnConsumedCapacity");
    Some((token, request))
}

pub(crate) enum Repeat {
    /// A repeat of an applied transaction: DynamoDB's answer to it.
    Applied(Bytes),
    /// The same token with another request.
    Mismatch,
}

impl Tokens {
    /// What DynamoDB answers a request whose token it has seen succeed, if it has.
    pub(crate) fn repeat(&self, call: &Call, body: &[u8]) -> Option<Repeat> {
        let (token, request) = token_of(call, body)?;
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let (first, answer) = applied.get(&token)?;
        Some(if *first == request {
            Repeat::Applied(answer.clone())
        } else {
            Repeat::Mismatch
        })
    }

    /// Remembers a transaction that succeeded.
    pub(crate) fn record(&self, call: &Call, body: &[u8], answer: &Bytes) {
        if let Some((token, request)) = token_of(call, body) {
            self.applied
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(token, (request, answer.clone()));
        }
    }
}
