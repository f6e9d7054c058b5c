#![no_main]
// Untrusted configuration bytes: parsing and every derived digest must fail cleanly, never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = train_lib::native::NativeConfig::parse(data) {
        let _ = c.body_digest();
        let _ = c.build_digest();
        let _ = c.dispatch_digest();
        let _ = c.route_keys();
        for (i, s) in c.stops.iter().enumerate() {
            let _ = c.stop_digest(i, s);
        }
        assert_eq!(c.to_json(), data);
    }
});
