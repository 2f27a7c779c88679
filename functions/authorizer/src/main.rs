#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let keys = flowline_lambda::cloud::key_store_from_env().await?;
    flowline_lambda::run_event(|request| async {
        Ok::<_, flowline_core::ApiError>(authorizer::handle(&keys, request).await)
    })
    .await
}
