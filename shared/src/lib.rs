//! Flowline's core: the model (types, validation, ids, state machines, page tokens, errors),
//! the use cases, the ports they speak through (`store::Table`, `scheduler::Scheduler`,
//! `scheduler::DispatchInvoker`, `webhooks::sender::WebhookSender`, `time::Clock`) and their
//! embedded implementations (in-memory table, in-process scheduler). It knows no AWS, Lambda or
//! HTTP client: those adapters live in `flowline-adapters` and `flowline-lambda`. Function
//! crates under `functions/` and the local server only parse requests, call in here, and render
//! answers.

pub mod app;
pub mod auth;
pub mod callbacks;
pub mod concurrency;
pub mod config;
pub mod deadline;
pub mod error;
pub mod fields;
pub mod flow_callbacks;
pub mod flows;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod ratelimit;
pub mod routes;
pub mod scheduler;
pub mod store;
pub mod suppressions;
pub mod sweeper;
pub mod time;
pub mod validate;
pub mod webhooks;

pub use app::App;
pub use auth::Caller;
pub use error::{ApiError, ApiResult};
pub use http::{ApiRequest, ApiResponse};
