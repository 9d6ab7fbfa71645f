//! Logs (tracing) and metrics (Prometheus).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Starts structured logging to stderr; `LATCH_LOG` (or `RUST_LOG`) sets the filter and
/// `LATCH_LOG_FORMAT=json` gives one JSON object per line (for log shippers).
pub fn init_logging() {
    let filter = std::env::var("LATCH_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = if std::env::var("LATCH_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder, installed on first use (tests start many apps in
/// one process, and a process has one global recorder).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("latch_http_request_duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples wait in a queue until upkeep folds them into the buckets;
            // without it they pile up between scrapes (8 bytes a request, for ever when
            // nobody scrapes).
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                });
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Most distinct routes [`HttpMetrics`] keeps; more would mean labels are not a fixed set
/// (further routes are counted as `other`).
const MAX_ROUTES: usize = 1024;

/// The per-request metrics (`latch_http_requests_total`, `latch_http_request_duration_seconds`)
/// with their handles registered once per label set.
///
/// Recording through `metrics::counter!` with labels builds a key (a vector of labels), hashes
/// it and looks it up in the recorder on every call; here a request costs one read lock and a
/// lookup of its route, then atomic increments on handles kept since the first request with
/// those labels.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: RwLock<HashMap<Box<str>, RouteMetrics>>,
}

#[derive(Debug)]
struct RouteMetrics {
    duration: Histogram,
    /// `(method, status, counter)`: a handful per route.
    requests: Vec<(&'static str, u16, Counter)>,
}

impl RouteMetrics {
    fn counter(&self, method: &'static str, status: u16) -> Option<&Counter> {
        self.requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
            .map(|(_, _, c)| c)
    }
}

impl HttpMetrics {
    /// Records one request: `route` is a matched route template (or `unmatched`), `method` a
    /// label from a fixed set, `status` the response's status code.
    pub fn record(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Ok(routes) = self.routes.read() {
            if let Some(known) = routes.get(route) {
                if let Some(counter) = known.counter(method, status) {
                    counter.increment(1);
                    known.duration.record(seconds);
                    return;
                }
            }
        }
        let Ok(mut routes) = self.routes.write() else {
            return;
        };
        let route = if routes.contains_key(route) || routes.len() < MAX_ROUTES {
            route
        } else {
            "other"
        };
        let entry = routes.entry(route.into()).or_insert_with(|| RouteMetrics {
            duration: metrics::histogram!(
                "latch_http_request_duration_seconds",
                "route" => route.to_owned()
            ),
            requests: Vec::new(),
        });
        if entry.counter(method, status).is_none() {
            let counter = metrics::counter!(
                "latch_http_requests_total",
                "route" => route.to_owned(),
                "method" => method,
                "status" => status.to_string()
            );
            entry.requests.push((method, status, counter));
        }
        if let Some(counter) = entry.counter(method, status) {
            counter.increment(1);
        }
        entry.duration.record(seconds);
    }
}
