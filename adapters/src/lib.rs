//! Flowline's outbound adapters: the AWS and HTTP implementations of the core's ports.
//!
//! | port (`flowline_core`) | adapter |
//! |---|---|
//! | `store::Table` | [`dynamodb::DynamoTable`] |
//! | `scheduler::Scheduler` | [`eventbridge::EventBridgeScheduler`] |
//! | `scheduler::DispatchInvoker` | [`lambda_invoke::LambdaInvoker`] |
//! | `webhooks::sender::WebhookSender` | [`webhook_http::HttpSender`] |
//! | `store::Table`, locally (feature `redb`) | `redb::RedbTable`, in one file of a data directory |
//!
//! Each is built from a client the caller made from one shared `SdkConfig` ([`sdk`]), so a
//! function links and initialises only the clients of the adapters it wires.

pub mod dynamodb;
pub mod eventbridge;
pub mod lambda_invoke;
#[cfg(feature = "redb")]
pub mod redb;
pub mod sdk;
pub mod webhook_http;
