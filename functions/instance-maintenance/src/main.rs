//! `instance-maintenance` Lambda: wiring only.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    fleetguard::observe::init_logging();
    let sdk = fleetguard::aws::load_sdk_config().await;
    let handler = instance_maintenance::build(|k| std::env::var(k).ok(), &sdk).await?;
    fleetguard::serve::run(handler).await
}
