//! Logging: a tracing subscriber writing text or JSON lines to stdout,
//! filtered by `RUST_LOG`; metrics: [`prometheus`].

pub mod prometheus;

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

/// An error and its sources, `outer: inner: innermost`, for an `error`
/// field: the top alone often hides the cause.
#[must_use]
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Many errors repeat their source in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write to the spool")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn cause_chain_names_every_cause_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(cause_chain(&e), "cannot write to the spool: disk full");
        let repeated = std::io::Error::other("disk full");
        assert_eq!(cause_chain(&repeated), "disk full");
    }
}
