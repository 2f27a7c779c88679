//! At most so many tries in flight per endpoint (SPEC §8: 10): a slow receiver is not hammered
//! into timeouts — and repeats — by a thousand callbacks due at once; the others wait their turn.
//!
//! Two layers. [`EndpointGate`] queues the tries of this process (the local server, one Lambda
//! sandbox) on a semaphore, so they wait in memory rather than poll. [`Lease`] holds one of the
//! endpoint's 10 slots in the table for the try, so the limit holds across every sandbox of
//! every function that sends (`deliver`, `dispatch`, the dispatch route): a slot is an item
//! `INFLIGHT#<endpoint>` / `<0-9>` put on condition that it is absent or its lease ran out (a
//! sandbox that died mid-try frees it after [`LEASE`]), and deleted when the try ends. Cost: a
//! conditional PutItem and a DeleteItem per try.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::concurrency::Backoff;
use crate::store::{Expect, Key, StoreError, Table, Write};
use crate::time::Clock;

/// SPEC §8's limit.
pub const DEFAULT_IN_FLIGHT: usize = 10;

pub struct EndpointGate {
    in_flight: usize,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Default for EndpointGate {
    fn default() -> Self {
        Self::new(DEFAULT_IN_FLIGHT)
    }
}

impl EndpointGate {
    pub fn new(in_flight: usize) -> Self {
        Self {
            in_flight,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// A place among the tries of `endpoint`, waiting for one until `until` (`None`: none came
    /// in time). The try runs while the permit is held.
    pub async fn enter(&self, endpoint: &str, until: Instant) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut endpoints = self
                .endpoints
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Forget endpoints nobody is using, so the map holds only the busy ones.
            endpoints.retain(|_, semaphore| {
                Arc::strong_count(semaphore) > 1 || semaphore.available_permits() < self.in_flight
            });
            endpoints
                .entry(endpoint.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.in_flight)))
                .clone()
        };
        tokio::time::timeout_at(until, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// How long a slot is held at most: longer than any try (10 s) with a wide margin.
pub const LEASE: Duration = Duration::from_secs(60);

/// One of an endpoint's slots, held for a try.
#[must_use = "a slot is held until released"]
pub struct Lease {
    key: Option<Key>,
}

fn slot_key(endpoint_id: &str, slot: usize) -> Key {
    Key::new(format!("INFLIGHT#{endpoint_id}"), slot.to_string())
}

impl Lease {
    /// Takes one of `endpoint_id`'s [`DEFAULT_IN_FLIGHT`] slots, waiting (polling with backoff)
    /// until `until` while all are held; `None`: none came in time. A table that cannot be
    /// written gives a lease without a slot: the limit protects receivers, it must not stop
    /// deliveries when the store has a bad moment (the try's own record will tell).
    pub async fn take(
        store: &dyn Table,
        clock: &dyn Clock,
        endpoint_id: &str,
        until: Instant,
    ) -> Option<Self> {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        // Whose lease it is: two leases are never the same item, so a store that checks whether
        // a conditional put failed only because an earlier attempt of it landed (the DynamoDB
        // adapter does) never takes another's slot for its own.
        let holder = crate::ids::random_token(16);
        loop {
            let now = clock.now().as_second();
            let first = rand::rng().random_range(0..DEFAULT_IN_FLIGHT);
            for slot in (0..DEFAULT_IN_FLIGHT).map(|n| (first + n) % DEFAULT_IN_FLIGHT) {
                let key = slot_key(endpoint_id, slot);
                let put = Write::Put {
                    key: key.clone(),
                    doc: serde_json::json!({ "holder": holder }),
                    expect: Expect::AbsentOrExpired(now),
                    expires_at: Some(now + LEASE.as_secs() as i64),
                };
                match store.write(vec![put]).await {
                    Ok(()) => return Some(Self { key: Some(key) }),
                    Err(StoreError::ConditionFailed) => {}
                    Err(err) => {
                        tracing::warn!(endpoint = %endpoint_id, %err, "no in-flight slot could be taken; trying without one");
                        return Some(Self { key: None });
                    }
                }
            }
            let pause = backoff.next_pause();
            if Instant::now() + pause >= until {
                return None;
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Frees the slot for the next try.
    pub async fn release(self, store: &dyn Table) {
        let Some(key) = self.key else { return };
        let delete = Write::Delete {
            key,
            expect: Expect::Anything,
        };
        if let Err(err) = store.write(vec![delete]).await {
            // It frees itself when its lease runs out.
            tracing::warn!(%err, "an in-flight slot was not released");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn at_most_the_limit_is_in_flight_per_endpoint_and_the_rest_wait() {
        let gate = EndpointGate::new(2);
        let far = Instant::now() + Duration::from_secs(60);
        let first = gate.enter("we_a", far).await.expect("a place");
        let _second = gate.enter("we_a", far).await.expect("a place");
        // Another endpoint has places of its own.
        let _other = gate.enter("we_b", far).await.expect("a place");
        // A third try of we_a waits, and gives up at its deadline.
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(gate.enter("we_a", soon).await.is_none());
        // Once one ends, the next goes in.
        drop(first);
        assert!(gate.enter("we_a", far).await.is_some());
    }
}
