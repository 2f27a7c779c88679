//! One way to configure the AWS SDK: a single `SdkConfig`, loaded once per process before any
//! client is built, from the standard environment (region, credentials, `AWS_ENDPOINT_URL`).

/// The shared configuration every client of this process is built from.
pub async fn load() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
