//! The black-box suite's clock: real time plus an offset the test moves. Time flows as usual
//! (ids and timestamps keep their order), and a test jumps ahead instead of sleeping — the
//! in-process scheduler's timers, which sleep on the application's clock, wake at once when a
//! jump passes their time. For a rule at its boundary (just before, just after) a test freezes
//! the clock at an exact instant.

use async_trait::async_trait;
use flowline_core::time::Clock;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default)]
struct State {
    offset: SignedDuration,
    /// While set, the clock reads exactly this.
    frozen: Option<Timestamp>,
}

pub struct TestClock {
    state: watch::Sender<State>,
}

impl Default for TestClock {
    fn default() -> Self {
        Self {
            state: watch::Sender::new(State::default()),
        }
    }
}

impl TestClock {
    /// Jumps `by` ahead.
    pub fn advance(&self, by: SignedDuration) {
        assert!(!by.is_negative(), "time never goes back");
        self.state.send_modify(|state| match &mut state.frozen {
            Some(at) => *at += by,
            None => state.offset += by,
        });
    }

    /// Jumps to `at`, if it is ahead.
    pub fn advance_to(&self, at: Timestamp) {
        let ahead = at.duration_since(self.now());
        if ahead.is_positive() {
            self.advance(ahead);
        }
    }

    /// Stops the clock where it stands, until [`resume`](Self::resume); answers that time.
    pub fn freeze(&self) -> Timestamp {
        let mut at = Timestamp::now();
        self.state.send_modify(|state| {
            at = state
                .frozen
                .unwrap_or_else(|| Timestamp::now() + state.offset);
            state.frozen = Some(at);
        });
        at
    }

    /// Stops the clock at `at` (ahead of now), until [`resume`](Self::resume).
    pub fn freeze_at(&self, at: Timestamp) {
        assert!(at >= self.now(), "time never goes back");
        self.state.send_modify(|state| state.frozen = Some(at));
    }

    /// Lets the clock flow again from where it stands.
    pub fn resume(&self) {
        self.state.send_modify(|state| {
            if let Some(at) = state.frozen.take() {
                state.offset = at.duration_since(Timestamp::now());
            }
        });
    }
}

#[async_trait]
impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let state = *self.state.borrow();
        state
            .frozen
            .unwrap_or_else(|| Timestamp::now() + state.offset)
    }

    async fn sleep_until(&self, at: Timestamp) {
        let mut moved = self.state.subscribe();
        loop {
            let wait = at.duration_since(self.now());
            if !wait.is_positive() {
                return;
            }
            let frozen = moved.borrow_and_update().frozen.is_some();
            // Real time may get there first (unless frozen), or a jump may.
            tokio::select! {
                () = tokio::time::sleep(wait.unsigned_abs()), if !frozen => {}
                _ = moved.changed() => {}
            }
        }
    }
}
