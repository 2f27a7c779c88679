//! A fault-injecting HTTP proxy for the tests: it sits on loopback between the AWS SDK clients
//! and the emulator (moto), which never throttles, conflicts or fails, and gives chosen requests
//! the faults real AWS gives under load — in AWS's own wire shape, so the SDK parses them into
//! its typed errors — and counts what goes through.
//!
//! ```no_run
//! # async fn example() {
//! use flowline_fault_proxy::{Fault, FaultProxy, Rule};
//!
//! let upstream = std::env::var("AWS_ENDPOINT_URL").unwrap();
//! let proxy = FaultProxy::start(&upstream).await;
//! // SDK clients built with `.endpoint_url(proxy.url())` now go through the proxy.
//! proxy.add_rule(
//!     Rule::new(Fault::transaction_canceled("TransactionConflict", Some(1)))
//!         .service("dynamodb")
//!         .operation("TransactWriteItems")
//!         .times(1),
//! );
//! # }
//! ```
//!
//! # Requests
//!
//! Each request is forwarded (method, path, query, headers, buffered body) and its answer
//! relayed; HTTP/1.1 keep-alive holds on both sides. The service is the SigV4 `Authorization`
//! header's credential scope (`Credential=…/us-east-1/dynamodb/aws4_request`: `dynamodb`,
//! `scheduler`, `lambda`); the operation is DynamoDB's `X-Amz-Target`
//! (`DynamoDB_20120810.PutItem` → `PutItem`), or for Scheduler and Lambda the REST route
//! (`POST /schedules/{name}` → `CreateSchedule`, `PUT` → `UpdateSchedule`, `DELETE` →
//! `DeleteSchedule`, `GET` → `GetSchedule`, likewise `/schedule-groups/{name}`;
//! `POST /2015-03-31/functions/{name}/invocations` → `Invoke`). Anything else is `unknown`.
//!
//! # Rules
//!
//! A rule picks requests and gives them a fault. As JSON (`POST /__proxy/rules`; every field
//! but `fault` is optional; the comments are not part of it):
//!
//! ```text
//! {
//!   "service": "dynamodb",                 // any service when absent
//!   "operation": "TransactWriteItems",     // any operation when absent
//!   "skip": 2,                             // let the first 2 matches through (default 0)
//!   "times": 1,                            // fault at most 1 request (default: no limit)
//!   "probability": 0.25, "seed": 7,        // pick each match with p = 0.25 (default 1)
//!   "when": "before",                      // "before" (default) or "after" forwarding
//!   "fault": {"kind": "transaction_canceled", "reason": "TransactionConflict", "item": 1}
//! }
//! ```
//!
//! Rules are tried in the order they were added; the first that picks a request gives it its
//! fault, and the rules after it do not see that request. A rule sees only the requests its
//! `service` and `operation` match: it lets `skip` of them through, then picks each of the
//! others with `probability` (drawn from its own generator seeded with `seed`, so the same
//! sequence of requests is always picked the same way), until it has faulted `times` of them.
//! `"times": N` alone is "the next N matching requests".
//!
//! `when`: `before` — the fault replaces forwarding, the emulator never sees the request;
//! `after` — the request is forwarded and applied, and the client gets the fault instead of
//! the answer ("the write happened but the caller saw an error").
//!
//! Faults (`kind`):
//! - `transaction_canceled` (`reason`, `item`): DynamoDB's `TransactionCanceledException`
//!   (HTTP 400) for a `TransactWriteItems` or `TransactGetItems` (the rule must name one),
//!   with one `CancellationReasons` entry per item of the request's `TransactItems`: `reason`
//!   (`TransactionConflict`, `ThrottlingError`, `ConditionalCheckFailed`, …) on item `item`
//!   (on every item when absent), `None` on the others, and DynamoDB's message
//!   `Transaction cancelled, please refer cancellation reasons for specific reasons [None, …]`.
//!   An `item` beyond the request's items leaves every reason `None`.
//! - `error` (`code`, optional `status`, `message`): the service's error `code` in its protocol
//!   — DynamoDB: HTTP 400/500, body `{"__type": "com.amazonaws.dynamodb.v20120810#<code>",
//!   "message": …}`; Scheduler and Lambda (REST-JSON): header `x-amzn-ErrorType: <code>`, body
//!   `{"Message": …}` (Lambda: with `"Type"`, and `message` where the error's shape spells it
//!   so). The proxy knows AWS's status for: DynamoDB `ProvisionedThroughputExceededException`,
//!   `ThrottlingException`, `RequestLimitExceeded`, `TransactionConflictException`,
//!   `ConditionalCheckFailedException` (400), `InternalServerError` (500); Scheduler
//!   `ThrottlingException` (429), `ConflictException` (409), `InternalServerException` (500);
//!   Lambda `TooManyRequestsException` (429), `ServiceException` (500). Other codes need
//!   `status`, as does a rule without `service` whose code is not known on all three.
//! - `status` (`status`): that HTTP status with an empty body (a load balancer's 503).
//! - `delay` (`ms`): the answer comes `ms` late. `before`: the request waits, then is
//!   forwarded (it is applied late, even if the client gave up meanwhile); `after`: it is
//!   applied at once and the answer waits. Either exceeds an SDK timeout.
//! - `reset`: the connection is closed with `SO_LINGER` 0 (a TCP RST) and no answer.
//!
//! A request being forwarded when its client gives up (an SDK timeout) is still forwarded and
//! applied, as it would be in AWS.
//!
//! # DynamoDB's transaction idempotency
//!
//! moto ignores `ClientRequestToken`; DynamoDB does not: a `TransactWriteItems` repeated with the
//! token of one that succeeded is answered with success and not applied again (another request
//! under the same token: `IdempotentParameterMismatchException`). The proxy keeps the tokens of
//! the transactions it forwarded successfully and answers their repeats so, which is what makes
//! an `after` fault on a transaction ("applied, answer lost") testable.
//!
//! # Counts
//!
//! Per service and operation: `requests` received, `forwarded` (answered by the upstream,
//! faulted `after` ones included), `faults` given, and for DynamoDB the `capacity` summed from
//! the answers' `ConsumedCapacity` (`capacity_units`, `read_capacity_units`,
//! `write_capacity_units`), also per table. To get it, the proxy adds
//! `"ReturnConsumedCapacity": "TOTAL"` to every request that takes it and has none (or
//! `NONE`) — the emulator does not check SigV4 signatures, so the changed body passes — and
//! removes `ConsumedCapacity` from those answers, so the client sees what it asked for.
//! `GET /__proxy/counts`:
//!
//! ```json
//! {"operations": {"dynamodb": {"PutItem": {"requests": 2, "forwarded": 2, "faults": 0,
//!    "capacity": {"capacity_units": 2.0, "read_capacity_units": 0.0, "write_capacity_units": 0.0}}}},
//!  "tables": {"flowline-test-x": {"capacity_units": 2.0, "read_capacity_units": 0.0, "write_capacity_units": 0.0}}}
//! ```
//!
//! The capacity is only what the answers say, never an estimate; an operation whose answers
//! carried none has no `capacity`. moto 5.2.1 reports constants, not sizes: `GetItem` 0.5,
//! `PutItem` 1, `DeleteItem` 1, `Query` 1, `Scan` 1, `UpdateItem` 0.5 (even unasked),
//! `BatchGetItem` 1 per key asked (found or not, even unasked), `BatchWriteItem` 1 per table
//! (even unasked), `TransactGetItems` 2 per item found (as capacity and read units);
//! `TransactWriteItems` reports nothing (an empty list), so its capacity stays `None`.
//!
//! # Control API
//!
//! On the proxy's own port: `POST /__proxy/rules` (a rule as above; 201 with the rule, 400 with
//! `{"error"}` when invalid), `DELETE /__proxy/rules` (all), `GET /__proxy/counts`,
//! `POST /__proxy/counts/reset`. The binary serves it:
//! `cargo run -p flowline-fault-proxy -- --upstream "$AWS_ENDPOINT_URL"` prints
//! `export FAULT_PROXY_URL=http://127.0.0.1:PORT` as its first line.
//!
//! `FAULT_PROXY_LOG=1` logs each request, its service, operation and fault to stderr.

mod call;
mod capacity;
mod control;
mod counts;
mod rules;
mod server;
mod state;
mod tokens;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::AbortHandle;

pub use counts::{Capacity, Counts, OperationCounts};
pub use rules::{Fault, Rule, When};

/// A running proxy, serving on the current tokio runtime until dropped.
pub struct FaultProxy {
    address: SocketAddr,
    state: Arc<state::State>,
    server: AbortHandle,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    ///
    /// # Panics
    /// When `upstream` is not an `http://` URL or no port is free: a broken test set-up.
    pub async fn start(upstream: &str) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(loopback, upstream)
            .await
            .unwrap_or_else(|error| panic!("the fault proxy to {upstream} starts: {error}"))
    }

    /// Starts a proxy to `upstream` listening on `listen`.
    ///
    /// # Errors
    /// `upstream` is not an `http://` URL, or `listen` cannot be bound.
    pub async fn start_on(listen: SocketAddr, upstream: &str) -> io::Result<Self> {
        if !upstream.starts_with("http://") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upstream must be http://host:port, not {upstream:?}"),
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(state::State::default());
        let proxy = Arc::new(server::Proxy::new(upstream, state.clone()));
        let server = tokio::spawn(proxy.serve(listener)).abort_handle();
        Ok(Self {
            address,
            state,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL to give the SDK clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Adds a rule after the others.
    ///
    /// # Panics
    /// When the rule is invalid (see the crate docs): a mistake in the test.
    #[track_caller]
    pub fn add_rule(&self, rule: Rule) {
        if let Err(error) = self.state.add_rule(rule) {
            panic!("invalid fault rule: {error}");
        }
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.clear_rules();
    }

    /// What went through the proxy so far.
    pub fn counts(&self) -> Counts {
        self.state.counts().clone()
    }

    pub fn reset_counts(&self) {
        self.state.reset_counts();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}
