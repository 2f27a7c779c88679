//! Fault rules: which requests get which fault, and when.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::wire;

/// Which requests a rule picks and the fault it gives them. The JSON form is the control API's
/// (see the crate docs); in Rust, build one with [`Rule::new`] and the methods after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A SigV4 signing name (`dynamodb`, `scheduler`, `lambda`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// An operation name (`PutItem`, `CreateSchedule`, `Invoke`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Matching requests let through untouched before the rule starts picking.
    #[serde(default)]
    pub skip: u64,
    /// Each match (after `skip`) is picked with this probability, drawn from a generator
    /// seeded with `seed`, so a given sequence of requests is always picked the same way.
    #[serde(default = "always")]
    pub probability: f64,
    #[serde(default)]
    pub seed: u64,
    /// How many requests the rule faults at most; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    #[serde(default)]
    pub when: When,
    pub fault: Fault,
}

fn always() -> f64 {
    1.0
}

/// Whether the upstream sees the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// The fault replaces forwarding: the emulator never sees the request (a delay forwards it
    /// late).
    #[default]
    Before,
    /// The request is forwarded and applied; the client gets the fault instead of the answer
    /// ("the write happened but the caller saw an error").
    After,
}

/// What the client gets instead of the upstream's answer, in AWS's own wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// DynamoDB's `TransactionCanceledException` for a `TransactWriteItems` or
    /// `TransactGetItems`: one cancellation reason per item of the request, `reason` (e.g.
    /// `TransactionConflict`, `ThrottlingError`, `ConditionalCheckFailed`) on item `item` (on
    /// every item when absent) and `None` on the others.
    TransactionCanceled {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<usize>,
    },
    /// An AWS error: `code` as the service's protocol carries it, with AWS's status for that
    /// code (`status` overrides it, and is needed for codes the proxy does not know).
    Error {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A bare HTTP status with an empty body (a load balancer's 503).
    Status { status: u16 },
    /// The answer comes `ms` milliseconds late.
    Delay { ms: u64 },
    /// The connection is dropped without an answer (a TCP reset).
    Reset,
}

impl Fault {
    pub fn transaction_canceled(reason: &str, item: Option<usize>) -> Self {
        Self::TransactionCanceled {
            reason: reason.to_owned(),
            item,
        }
    }

    /// The error `code` with AWS's status and message for it.
    pub fn error(code: &str) -> Self {
        Self::Error {
            code: code.to_owned(),
            status: None,
            message: None,
        }
    }
}

impl Rule {
    /// A rule that gives `fault` to every request, before forwarding, until narrowed.
    pub fn new(fault: Fault) -> Self {
        Self {
            service: None,
            operation: None,
            skip: 0,
            probability: 1.0,
            seed: 0,
            times: None,
            when: When::Before,
            fault,
        }
    }

    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }

    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Only the next `n` matching requests (after any skipped).
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Lets the first `k` matching requests through.
    pub fn skip(mut self, k: u64) -> Self {
        self.skip = k;
        self
    }

    /// Picks each match with probability `p`, deterministically for a given `seed`.
    pub fn probability(mut self, p: f64, seed: u64) -> Self {
        self.probability = p;
        self.seed = seed;
        self
    }

    /// Forwards the request first: the upstream applies it, the client sees the fault.
    pub fn after_forwarding(mut self) -> Self {
        self.when = When::After;
        self
    }

    /// Refuses rules that could not produce what they say.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability must be within 0..=1, not {}",
                self.probability
            ));
        }
        match &self.fault {
            Fault::TransactionCanceled { .. } => {
                let transaction = matches!(
                    self.operation.as_deref(),
                    Some("TransactWriteItems" | "TransactGetItems")
                );
                if !transaction || self.service.as_deref().is_some_and(|s| s != "dynamodb") {
                    return Err("transaction_canceled needs \"operation\": \
                                \"TransactWriteItems\" or \"TransactGetItems\" (on dynamodb)"
                        .to_owned());
                }
            }
            Fault::Error {
                code, status: None, ..
            } => {
                let services = match &self.service {
                    Some(service) => vec![service.as_str()],
                    None => vec!["dynamodb", "scheduler", "lambda"],
                };
                if let Some(service) = services
                    .into_iter()
                    .find(|s| wire::status_of(s, code).is_none())
                {
                    return Err(format!(
                        "no known status for {code} on {service}: give \"status\""
                    ));
                }
            }
            Fault::Status { status } if !(100..=599).contains(status) => {
                return Err(format!("{status} is not an HTTP status"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A rule with its progress: matches seen, faults given, and its own random sequence.
pub(crate) struct ActiveRule {
    rule: Rule,
    seen: u64,
    fired: u64,
    rng: StdRng,
}

impl ActiveRule {
    pub(crate) fn new(rule: Rule) -> Self {
        let rng = StdRng::seed_from_u64(rule.seed);
        Self {
            rule,
            seen: 0,
            fired: 0,
            rng,
        }
    }

    /// Whether this request gets the rule's fault; advances the rule's state when it matches.
    pub(crate) fn picks(&mut self, call: &Call) -> Option<(When, Fault)> {
        let rule = &self.rule;
        let matches = rule.service.as_ref().is_none_or(|s| *s == call.service)
            && rule.operation.as_ref().is_none_or(|o| *o == call.operation);
        if !matches {
            return None;
        }
        self.seen += 1;
        if self.seen <= rule.skip || rule.times.is_some_and(|t| self.fired >= t) {
            return None;
        }
        // Draw only for real probabilities, so `probability: 1` needs no seed to be exact.
        if rule.probability < 1.0 && self.rng.random::<f64>() >= rule.probability {
            return None;
        }
        self.fired += 1;
        Some((rule.when, rule.fault.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_item() -> Call {
        Call {
            service: "dynamodb".to_owned(),
            operation: "PutItem".to_owned(),
        }
    }

    #[test]
    fn the_json_form_has_defaults_and_refuses_unknown_fields() {
        let rule: Rule = serde_json::from_str(
            r#"{"service": "dynamodb", "operation": "PutItem", "times": 2,
                "fault": {"kind": "error", "code": "ThrottlingException"}}"#,
        )
        .unwrap();
        assert_eq!(
            rule,
            Rule::new(Fault::error("ThrottlingException"))
                .service("dynamodb")
                .operation("PutItem")
                .times(2)
        );
        assert!(
            serde_json::from_str::<Rule>(r#"{"fault": {"kind": "reset"}, "tims": 1}"#).is_err()
        );
        let misspelt = r#"{"fault": {"kind": "error", "code": "X", "stauts": 429}}"#;
        assert!(serde_json::from_str::<Rule>(misspelt).is_err());
    }

    #[test]
    fn skip_then_times() {
        let mut rule = ActiveRule::new(Rule::new(Fault::Reset).skip(1).times(2));
        let picked: Vec<bool> = (0..5).map(|_| rule.picks(&put_item()).is_some()).collect();
        assert_eq!(picked, [false, true, true, false, false]);
    }

    #[test]
    fn validation_needs_a_status_for_unknown_codes() {
        assert!(
            Rule::new(Fault::error("ThrottlingException"))
                .validate()
                .is_err()
        );
        assert!(
            Rule::new(Fault::error("ThrottlingException"))
                .service("scheduler")
                .validate()
                .is_ok()
        );
        assert!(
            Rule::new(Fault::transaction_canceled("TransactionConflict", None))
                .operation("PutItem")
                .validate()
                .is_err()
        );
    }
}
