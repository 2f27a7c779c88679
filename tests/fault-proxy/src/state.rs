//! The proxy's shared state: its rules and its counts.

use std::sync::{Mutex, MutexGuard};

use crate::call::Call;
use crate::counts::Counts;
use crate::rules::{ActiveRule, Fault, Rule, When};
use crate::tokens::Tokens;

#[derive(Default)]
pub(crate) struct State {
    rules: Mutex<Vec<ActiveRule>>,
    counts: Mutex<Counts>,
    pub(crate) tokens: Tokens,
}

impl State {
    pub(crate) fn add_rule(&self, rule: Rule) -> Result<(), String> {
        rule.validate()?;
        lock(&self.rules).push(ActiveRule::new(rule));
        Ok(())
    }

    pub(crate) fn clear_rules(&self) {
        lock(&self.rules).clear();
    }

    pub(crate) fn counts(&self) -> MutexGuard<'_, Counts> {
        lock(&self.counts)
    }

    pub(crate) fn reset_counts(&self) {
        *self.counts() = Counts::default();
    }

    /// Counts the request and picks its fault: the first rule, in the order they were added,
    /// that picks it. Rules after that one do not see the request.
    pub(crate) fn pick(&self, call: &Call) -> Option<(When, Fault)> {
        let picked = lock(&self.rules)
            .iter_mut()
            .find_map(|rule| rule.picks(call));
        let mut counts = self.counts();
        let counts = counts.of(call);
        counts.requests += 1;
        counts.faults += u64::from(picked.is_some());
        picked
    }
}

/// A poisoned lock only means a test thread panicked; the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
