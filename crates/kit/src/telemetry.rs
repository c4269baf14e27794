//! Logs as JSON lines on stdout, filtered by `RUST_LOG` (default `info`). Personal data never
//! reaches a log: domain types print masked, and secrets are wrapped so they print redacted.

use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true);
    if tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init()
        .is_ok()
    {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            "telemetry ready"
        );
    }
}
