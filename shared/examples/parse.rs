//! Parse event files the way the functions do and print the typed result (or the error).
//! `cargo run -p fleetguard --example parse -- events/spot/interruption-terminate.json …`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                failed = true;
            }
            Ok(bytes) => match fleetguard::parse_event(&bytes) {
                Ok(ev) => println!(
                    "{path}: {} ({}) {}",
                    ev.kind(),
                    ev.subject(),
                    fleetguard::text::excerpt(&serde_json::to_string(&ev).unwrap_or_default(), 400)
                ),
                Err(e) => {
                    println!("{path}: error: {e}");
                    failed = true;
                }
            },
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
