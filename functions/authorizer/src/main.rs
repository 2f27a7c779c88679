#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let authorizer = flowline_lambda::cloud::authorizer_from_env().await?;
    flowline_lambda::run_event(|request| async {
        Ok::<_, flowline_core::ApiError>(authorizer::handle(&authorizer, request).await)
    })
    .await
}
