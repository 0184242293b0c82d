//! Rebuilds the binary when a `BEACON_BUILD_*` variable read by `src/event/branding.rs` changes.

fn main() {
    for name in [
        "BEACON_BUILD_PRODUCT",
        "BEACON_BUILD_ENDPOINT",
        "BEACON_BUILD_KEY",
        "BEACON_BUILD_PROTOCOL",
        "BEACON_BUILD_EVENT_STARTED",
        "BEACON_BUILD_EVENT_SUCCESS",
        "BEACON_BUILD_EVENT_ERROR",
        "BEACON_BUILD_EVENT_SUPPORT",
        "BEACON_BUILD_NOTICE",
        "BEACON_BUILD_PRIVACY_URL",
        "BEACON_BUILD_OPT_OUT_HINT",
    ] {
        println!("cargo:rerun-if-env-changed={name}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
