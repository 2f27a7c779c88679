use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    // The scheduler schedules a delivery's next try (targeting this function).
    let app = Cloud::from_env()
        .await?
        .with_scheduler()?
        .with_webhooks()
        .app();
    flowline_lambda::run_event(|job| dispatch::handle(&app, job)).await
}
