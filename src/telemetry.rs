//! Logging: a tracing subscriber writing text or JSON lines to stdout,
//! filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Starts logging to stdout, text or JSON, filtered by `RUST_LOG`.
///
/// # Errors
/// `RUST_LOG` is not a valid filter.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| {
        anyhow::anyhow!(
            "RUST_LOG {:?} is not a valid log filter: {e}",
            settings.filter
        )
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
