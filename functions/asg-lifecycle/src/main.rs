//! `asg-lifecycle` Lambda: wiring only. Configuration, clients and handler live in the `fleetguard` crate.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    fleetguard::function::run(fleetguard::Function::AsgLifecycle).await
}
