//! At most so many tries in flight per endpoint (SPEC §8: 10): a slow receiver is not hammered
//! into timeouts — and repeats — by a thousand callbacks due at once; the others wait their turn.
//! This gate counts the tries of this process (the local server, one Lambda sandbox).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

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
