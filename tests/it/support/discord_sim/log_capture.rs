//! Guard against silently dropped events: capture serenity's logs.

use std::fmt::Write as _;
use std::sync::Mutex;

/// Put this string in a deliberately broken payload (see `sim_smoke`) to check that the
/// guard fires; [`LogCapture::unknown_events`] ignores lines containing it, so the probe
/// does not fail tests running in parallel.
pub const GUARD_PROBE_MARKER: &str = "discord-sim-guard-probe";

/// One captured log event.
#[derive(Clone, Debug)]
pub struct CapturedLog {
    pub level: tracing::Level,
    pub target: String,
    pub message: String,
}

/// Logs captured by the process-wide subscriber [`serenity_log_capture`] installs:
/// `serenity::client::dispatch` at debug (where "An unknown event was received" is
/// logged) and every WARN/ERROR from serenity, poise and the simulator.
pub struct LogCapture {
    lines: Mutex<Vec<CapturedLog>>,
}

impl LogCapture {
    /// Every "An unknown event was received" line: each is a dispatch serenity dropped.
    pub fn unknown_events(&self) -> Vec<String> {
        self.matching(|l| {
            l.message.contains("An unknown event was received")
                && !l.message.contains(GUARD_PROBE_MARKER)
        })
    }

    /// WARN and ERROR lines.
    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
    pub fn warnings(&self) -> Vec<String> {
        self.matching(|l| l.level <= tracing::Level::WARN)
    }

    /// Lines serenity logs when it skips part of a payload it cannot read (e.g. a guild
    /// channel inside `GUILD_CREATE`) or cannot parse a frame at all.
    pub fn deserialization_warnings(&self) -> Vec<String> {
        self.matching(|l| {
            l.level <= tracing::Level::WARN && l.message.to_lowercase().contains("deserializ")
        })
    }

    /// Everything captured so far.
    pub fn all(&self) -> Vec<CapturedLog> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether this process's global subscriber is ours (false if someone installed
    /// another global subscriber first; then nothing is captured).
    #[allow(clippy::unused_self)] // one subscriber per process; a method reads better
    pub fn is_installed(&self) -> bool {
        CAPTURE_INSTALLED.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn matching(&self, f: impl Fn(&CapturedLog) -> bool) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|l| f(l))
            .map(|l| format!("{} {}: {}", l.level, l.target, l.message))
            .collect()
    }
}

struct CaptureLayer(&'static LogCapture);

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let mut lines = self
            .0
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lines.len() < 100_000 {
            lines.push(CapturedLog {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                message: visitor.0,
            });
        }
    }
}

/// Installs (once per process) a global tracing subscriber that captures serenity's
/// dispatch debug logs and all warnings, and prints logs to the test output when
/// `TEST_LOG` is set (filter from `RUST_LOG`, default `info`). Call it at the start of
/// every test that runs a serenity client, then assert
/// `serenity_log_capture().unknown_events().is_empty()`.
///
/// # Panics
/// If another global subscriber was installed first (nothing could be captured).
pub fn serenity_log_capture() -> &'static LogCapture {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    static CAPTURE: std::sync::OnceLock<&'static LogCapture> = std::sync::OnceLock::new();
    let capture = *CAPTURE.get_or_init(|| {
        let capture: &'static LogCapture = Box::leak(Box::new(LogCapture {
            lines: Mutex::new(Vec::new()),
        }));
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("serenity::client::dispatch", tracing::Level::DEBUG)
            .with_default(tracing::Level::WARN);
        let capture_layer = CaptureLayer(capture).with_filter(targets);
        let print_layer = std::env::var_os("TEST_LOG").map(|_| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter)
        });
        let subscriber = tracing_subscriber::registry()
            .with(capture_layer)
            .with(print_layer);
        let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        CAPTURE_INSTALLED.store(installed, std::sync::atomic::Ordering::SeqCst);
        capture
    });
    assert!(
        capture.is_installed(),
        "serenity_log_capture: another global tracing subscriber was installed first; \
         install this one instead (it also prints logs when TEST_LOG is set)"
    );
    capture
}

static CAPTURE_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
