use flowline_lambda::Cloud;

#[tokio::main]
async fn main() -> Result<(), flowline_lambda::Error> {
    let app = Cloud::from_env().await?.with_dispatch_invoker()?.app();
    flowline_lambda::run_event(|tick| sweeper::handle(&app, tick)).await
}
