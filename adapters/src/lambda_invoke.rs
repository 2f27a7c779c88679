//! "Now" in the cloud: an asynchronous (`Event`) invocation of the dispatch function with a
//! [`Job`] (a callback's dispatch, a delivery's try), since a schedule cannot be in the past. Lambda queues
//! the event and retries a failed run; the sweeper covers an invocation that is lost anyway.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use flowline_core::scheduler::{DispatchInvoker, Job, SchedulerError};

pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    dispatch_function_arn: String,
}

impl LambdaInvoker {
    pub fn new(client: aws_sdk_lambda::Client, dispatch_function_arn: impl Into<String>) -> Self {
        Self {
            client,
            dispatch_function_arn: dispatch_function_arn.into(),
        }
    }
}

#[async_trait]
impl DispatchInvoker for LambdaInvoker {
    async fn invoke(&self, job: &Job) -> Result<(), SchedulerError> {
        let payload =
            serde_json::to_vec(job).map_err(|err| SchedulerError::Refused(err.to_string()))?;
        self.client
            .invoke()
            .function_name(&self.dispatch_function_arn)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(drop)
            .map_err(|err| {
                SchedulerError::Unavailable(
                    aws_sdk_lambda::error::DisplayErrorContext(err).to_string(),
                )
            })
    }
}
