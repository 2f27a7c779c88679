use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let app = Cloud::from_env()
        .await?
        .with_scheduler()?
        .with_webhooks()
        .app();
    flowline_lambda::run_event(|batch| deliver::handle(&app, batch)).await
}
