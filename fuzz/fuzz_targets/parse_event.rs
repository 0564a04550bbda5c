#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = fleetguard::parse_event(data) {
        let _ = ev.subject();
        let _ = serde_json::to_string(&ev);
    }
});
