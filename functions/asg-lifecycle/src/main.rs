//! `asg-lifecycle` Lambda: wiring only.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    fleetguard::observe::init_logging();
    let sdk = fleetguard::aws::load_sdk_config().await;
    let lookup = |k: &str| std::env::var(k).ok();
    let handler = asg_lifecycle::build(lookup, &sdk).await?;
    // Standalone, or an organization's hub (`MEMBER_ACCOUNTS` / `ORGANIZATION_ID`).
    let handler = fleetguard::hub::Hub::new(handler, &lookup, &sdk)?;
    fleetguard::serve::run(handler).await
}
