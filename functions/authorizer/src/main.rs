#[tokio::main]
async fn main() -> Result<(), flowline_core::lambda::Error> {
    let keys = flowline_core::lambda::start_authorizer().await?;
    flowline_core::lambda::run_event(|request| async {
        Ok::<_, flowline_core::ApiError>(authorizer::handle(&keys, request).await)
    })
    .await
}
