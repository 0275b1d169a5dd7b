//! The handlers: each reads a snapshot of the service, and the pure
//! functions in [`super::readiness`] decide.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::readiness::{liveness, readiness, Gateway, Snapshot};
use super::Health;
use crate::app::{now_millis, App, LeaseState};
use crate::telemetry::prometheus as metric;

/// Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(health)
}

/// 200 while the loops run (or shutdown has begun), else 503.
async fn healthz(State(h): State<Health>) -> Response {
    let body = liveness(h.stopping.is_cancelled(), &h.loops.ended());
    (status(body.alive), Json(body)).into_response()
}

/// 200 when ready, else 503; the body says which conditions hold.
async fn readyz(State(h): State<Health>) -> Response {
    let body = readiness(&snapshot(&h), &h.limits);
    (status(body.ready), Json(body)).into_response()
}

/// The Prometheus text, with the gauges of current state sampled now.
async fn render_metrics(State(h): State<Health>) -> Response {
    sample_gauges(&h.app);
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        h.metrics.render(),
    )
        .into_response()
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn snapshot(h: &Health) -> Snapshot {
    Snapshot {
        now: now_millis(),
        stopping: h.stopping.is_cancelled(),
        lease: h.app.lease(),
        gateway: match (h.gateway, h.app.gateway_seen()) {
            (false, _) => Gateway::Headless,
            (true, None) => Gateway::Starting,
            (true, Some(link)) => Gateway::Seen(link),
        },
        guilds_seen: h.app.guilds_seen(),
        db: h.app.store().contact(),
        backlog: h.app.writer().status().backlog,
    }
}

/// Gauges of state rather than of events: read when scraped.
// Byte and op counts stay far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn sample_gauges(app: &App) {
    let status = app.writer().status();
    let now_micros = u64::try_from(now_millis()).unwrap_or(0) * 1000;
    metrics::gauge!(metric::SPOOL_BYTES).set(status.spool_bytes as f64);
    metrics::gauge!(metric::SPOOL_BACKLOG).set(status.backlog as f64);
    metrics::gauge!(metric::SPOOL_OLDEST_UNAPPLIED).set(status.oldest_unapplied_age(now_micros));
    metrics::gauge!(metric::DEAD_LETTERS_WAITING).set(status.dead_letters as f64);
    metrics::gauge!(metric::WRITES_ALLOWED).set(if status.writes_allowed { 1.0 } else { 0.0 });
    let lease = app.lease();
    for state in LeaseState::ALL {
        let on = if lease.state == state { 1.0 } else { 0.0 };
        metrics::gauge!(metric::LEASE_STATE, "state" => state.name()).set(on);
    }
    metrics::gauge!(metric::LEASE_EPOCH).set(lease.epoch as f64);
}
