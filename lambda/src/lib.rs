//! Flowline on AWS Lambda. A function's `main` builds its application with [`Cloud`] (only the
//! adapters it uses) and serves its handler with [`run_http`] (API Gateway routes) or
//! [`run_event`] (scheduler input, sweeper tick, authorizer request):
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), flowline_lambda::Error> {
//!     let app = flowline_lambda::Cloud::from_env().await?.app();
//!     flowline_lambda::run_http(|request| flow_get::handle(&app, request)).await
//! }
//! ```

pub mod authorizer;
pub mod cloud;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod stream;

pub use cloud::Cloud;
pub use http::{api_request, lambda_response, run_event, run_http, serve};
pub use lambda_http::Error;
