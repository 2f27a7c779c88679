//! What went through the proxy: requests, forwards and faults per operation, and the DynamoDB
//! capacity the answers reported, per operation and per table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::Call;

/// A snapshot of the counts (`FaultProxy::counts`, `GET /__proxy/counts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// service → operation → its counts.
    pub operations: BTreeMap<String, BTreeMap<String, OperationCounts>>,
    /// DynamoDB table → the capacity its answers reported (tables that reported none are absent).
    pub tables: BTreeMap<String, Capacity>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationCounts {
    /// Requests the proxy received.
    pub requests: u64,
    /// Requests the upstream answered (faulted "after" ones included).
    pub forwarded: u64,
    /// Faults given.
    pub faults: u64,
    /// The sum of the `ConsumedCapacity` the upstream's answers carried; `None` when no answer
    /// carried any (never an estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// Capacity units, as DynamoDB's `ConsumedCapacity` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub capacity_units: f64,
    pub read_capacity_units: f64,
    pub write_capacity_units: f64,
}

impl Capacity {
    fn add(&mut self, other: Capacity) {
        self.capacity_units += other.capacity_units;
        self.read_capacity_units += other.read_capacity_units;
        self.write_capacity_units += other.write_capacity_units;
    }
}

impl Counts {
    /// The counts of one operation (all zero if it was never seen).
    pub fn operation(&self, service: &str, operation: &str) -> OperationCounts {
        self.operations
            .get(service)
            .and_then(|operations| operations.get(operation))
            .cloned()
            .unwrap_or_default()
    }

    /// The capacity `table`'s answers reported, if any did.
    pub fn table(&self, table: &str) -> Option<Capacity> {
        self.tables.get(table).copied()
    }

    pub(crate) fn of(&mut self, call: &Call) -> &mut OperationCounts {
        self.operations
            .entry(call.service.clone())
            .or_default()
            .entry(call.operation.clone())
            .or_default()
    }

    /// Adds an answer's `ConsumedCapacity`: one object (single-table operations) or a list of
    /// them, one per table (batches, transactions).
    pub(crate) fn add_consumed(&mut self, call: &Call, consumed: &Value) {
        let entries = match consumed {
            Value::Array(entries) => entries.iter().collect(),
            entry => vec![entry],
        };
        for entry in entries {
            let units = |name: &str| entry[name].as_f64().unwrap_or(0.0);
            let capacity = Capacity {
                capacity_units: units("CapacityUnits"),
                read_capacity_units: units("ReadCapacityUnits"),
                write_capacity_units: units("WriteCapacityUnits"),
            };
            self.of(call)
                .capacity
                .get_or_insert_with(Capacity::default)
                .add(capacity);
            if let Some(table) = entry["TableName"].as_str() {
                self.tables
                    .entry(table.to_owned())
                    .or_default()
                    .add(capacity);
            }
        }
    }
}
