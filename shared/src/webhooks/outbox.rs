//! The outbox (SPEC §8): every lifecycle event is written in the same transaction as the change
//! that causes it — a change that commits always has its event, one that fails has none — and
//! is delivered after the request has answered by whoever reads the outbox: in the cloud the
//! `deliver` function, fed by the table's DynamoDB Stream; locally the in-process relay
//! (`relay.rs`). Both hand each item to `worker::handle`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | work waiting to be handed out | `OUTBOX#<shard 0-15>` | `<event id, or the id of the work>` |
//!
//! Besides events, the outbox carries the other work that must happen after an answer:
//! a redelivery asked for by a customer, and the draining of a recovered endpoint's backlog.
//! An item is removed once handled; one left behind (a crash, a failed stream batch) is
//! handled again, which is safe: fanning an event out creates each delivery once (delivery ids
//! are derived from the event and the endpoint), and the worker skips an item already removed.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventType;
use super::delivery::Event;
use crate::ids;
use crate::store::{Expect, Item, Key, StoreError, Write, shard_of};
use crate::time::rfc3339;

/// Partitions of the outbox: 1,000 events a second platform-wide is about 125 writes a second
/// (a put and a delete each) per partition, far under DynamoDB's 1,000.
pub const SHARDS: u32 = 16;
/// An item nobody handled (the stream gave up on its batch) is kept this long, like deliveries.
const KEPT: SignedDuration = SignedDuration::from_hours(30 * 24);

/// The work an outbox item asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// A lifecycle event, to hand to every endpoint subscribed to it.
    Event {
        organization_id: String,
        event: Event,
    },
    /// One more try of a delivery, now (redeliver, recover).
    Redelivery {
        organization_id: String,
        endpoint_id: String,
        delivery_id: String,
    },
    /// An endpoint answered again after failing: send its waiting deliveries, oldest first.
    Drain {
        organization_id: String,
        endpoint_id: String,
    },
}

/// An outbox item: the work, when it was queued, and how often the sweeper nudged it (wrote it
/// again so the stream hands it out once more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outboxed {
    #[serde(with = "rfc3339")]
    pub queued_at: Timestamp,
    #[serde(default)]
    pub nudges: u32,
    #[serde(flatten)]
    pub work: Work,
}

pub fn is_outbox_key(pk: &str) -> bool {
    pk.starts_with("OUTBOX#")
}

pub fn shard_pk(shard: u32) -> String {
    format!("OUTBOX#{shard}")
}

fn key(id: &str) -> Key {
    Key::new(shard_pk(shard_of(id, SHARDS)), id)
}

fn put(id: &str, mut work: Work, now: Timestamp) -> Result<Write, StoreError> {
    // An event's data (a whole callback or flow) is most of the item: it is moved into the
    // document rather than copied through the serializer.
    let data = match &mut work {
        Work::Event { event, .. } => Some(std::mem::take(&mut event.data)),
        Work::Redelivery { .. } | Work::Drain { .. } => None,
    };
    let outboxed = Outboxed {
        queued_at: now,
        nudges: 0,
        work,
    };
    let mut doc =
        serde_json::to_value(&outboxed).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    if let Some(data) = data {
        doc["event"]["data"] = data;
    }
    Ok(Write::Put {
        key: key(id),
        doc,
        expect: Expect::Absent,
        expires_at: Some((now + KEPT).as_second()),
    })
}

/// The write that puts lifecycle event `event_type` about `data` in the outbox, for the
/// transaction of the change it reports.
pub fn event(
    organization_id: &str,
    event_type: EventType,
    data: Value,
    now: Timestamp,
) -> Result<Write, StoreError> {
    let event = Event::new(event_type, None, now, data);
    let id = event.id.clone();
    let work = Work::Event {
        organization_id: organization_id.to_owned(),
        event,
    };
    put(&id, work, now)
}

/// The write that asks for one more try of a delivery.
pub fn redelivery(
    organization_id: &str,
    endpoint_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<Write, StoreError> {
    let work = Work::Redelivery {
        organization_id: organization_id.to_owned(),
        endpoint_id: endpoint_id.to_owned(),
        delivery_id: delivery_id.to_owned(),
    };
    put(&ids::new_id("rdl_", now.as_millisecond()), work, now)
}

/// The write that asks for an endpoint's backlog to be sent.
pub fn drain(
    organization_id: &str,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<Write, StoreError> {
    let work = Work::Drain {
        organization_id: organization_id.to_owned(),
        endpoint_id: endpoint_id.to_owned(),
    };
    put(&ids::new_id("drn_", now.as_millisecond()), work, now)
}

/// Reads an outbox item as the stream or the relay sees it.
pub fn decode(item: &Item) -> Result<Outboxed, StoreError> {
    item.decode()
}
