//! Flows (SPEC §2): versioned call/conversation flow definitions.

pub mod data;
pub mod input;
pub mod model;
pub mod policies;
pub mod service;
pub mod store;

pub use input::{FlowFields, read_flow_body, read_flow_fields};
pub use model::{ChannelType, FlowStatus, FlowType, FlowView};
pub use service::FlowRef;
