use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    // A retry makes a schedule; an opt-out deletes the schedules of the callbacks it cancels.
    let app = Cloud::from_env().await?.with_scheduler()?.app();
    flowline_lambda::run_http(|request| callback_outcome::handle(&app, request)).await
}
