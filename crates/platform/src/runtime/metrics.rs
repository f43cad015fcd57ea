//! Prometheus metrics of one platform instance (docs/PRODUCT.md RC-PROD-15).
//!
//! The recorder belongs to the app state, not to the process: `metrics`' global recorder
//! would make two platforms in one test process share counters. Handlers call the typed
//! methods here; `/metrics` renders the text format.
//!
//! Registering a metric builds its key (label strings) and looks it up in the recorder's
//! registry; doing that on every request showed in the heartbeat profile (BENCHMARKS.md). The
//! handles of the per-request metrics are therefore registered once per label set and kept
//! here; the label values are `'static` (apicode names, transports, wire codes), so a lookup
//! allocates nothing.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::Transport;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::runtime::util::FastMap;

static META: Metadata<'static> = Metadata::new("rollcall", Level::INFO, Some(module_path!()));

/// Latency buckets in seconds: 0.1 ms … 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upload-latency buckets in seconds: 0.1 s … 1 day (offline backlogs arrive late).
const UPLOAD_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// The result code of an answered request that succeeded.
pub const OK: &str = "ok";

/// (apicode, transport, code) of one device request.
type RequestLabels = (&'static str, &'static str, &'static str);

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Registered handles of `rollcall_requests_total` and `rollcall_request_seconds`.
    requests: Mutex<FastMap<RequestLabels, (Counter, Histogram)>>,
    /// The same handles for the successes of each apicode over each transport, the answer
    /// to almost every request: found by index, without the map's lock, which both runtime
    /// workers would otherwise take on every request. Filled on first use, so `/metrics`
    /// lists only what happened.
    successes: [[OnceLock<(Counter, Histogram)>; 2]; ApiCode::ALL.len()],
    /// Handles of the unlabelled per-record metrics, registered once.
    upload_latency: Histogram,
    ingest_batch: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect()
}

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("rollcall_request_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "rollcall_upload_latency_seconds".into(),
                    ),
                    UPLOAD_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let upload_latency =
            recorder.register_histogram(&Key::from_name("rollcall_upload_latency_seconds"), &META);
        let ingest_batch =
            recorder.register_histogram(&Key::from_name("rollcall_ingest_batch_size"), &META);
        Metrics {
            recorder,
            handle,
            requests: Mutex::new(FastMap::default()),
            successes: Default::default(),
            upload_latency,
            ingest_batch,
        }
    }

    /// One answered device request: by apicode, transport and result code ("ok" or a code).
    pub fn request(
        &self,
        api: Option<ApiCode>,
        transport: Transport,
        code: &'static str,
        elapsed: Duration,
    ) {
        let transport_label = match transport {
            Transport::Tcp => "tcp",
            Transport::Http => "http",
        };
        let apicode = api.map_or("unknown", ApiCode::as_str);
        let slot = api
            .filter(|_| code == OK)
            .and_then(|api| self.successes.get(api as usize))
            .and_then(|row| row.get(transport as usize));
        if let Some(slot) = slot {
            let (counter, histogram) =
                slot.get_or_init(|| self.register_request(apicode, transport_label, code));
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
            return;
        }
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        // Recorded under the lock rather than cloning the handles out (two reference counts
        // up and down per request); recording is two atomic operations.
        let (counter, histogram) = requests
            .entry((apicode, transport_label, code))
            .or_insert_with(|| self.register_request(apicode, transport_label, code));
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    }

    /// The handles of one label set of the per-request metrics.
    fn register_request(
        &self,
        apicode: &'static str,
        transport: &'static str,
        code: &'static str,
    ) -> (Counter, Histogram) {
        let l = labels(&[
            ("apicode", apicode),
            ("transport", transport),
            ("code", code),
        ]);
        let counter = self
            .recorder
            .register_counter(&Key::from_parts("rollcall_requests_total", l), &META);
        let l = labels(&[("apicode", apicode), ("transport", transport)]);
        let histogram = self
            .recorder
            .register_histogram(&Key::from_parts("rollcall_request_seconds", l), &META);
        (counter, histogram)
    }

    /// Receive time − recordTime of a stored attendance record.
    pub fn upload_latency(&self, millis: i64) {
        self.upload_latency.record(millis.max(0) as f64 / 1000.0);
    }

    /// Sign-ins committed together in one transaction.
    pub fn ingest_batch(&self, size: usize) {
        self.ingest_batch.record(size as f64);
    }

    pub fn tcp_connections(&self, open: usize) {
        self.gauge("rollcall_tcp_connections", open as f64);
    }

    /// Called by the housekeeper every flush interval. It also folds the histogram samples
    /// recorded since into their buckets: the recorder otherwise keeps every sample (8 bytes
    /// per request) until `/metrics` is next scraped, which may be never.
    pub fn online_devices(&self, n: usize) {
        self.gauge("rollcall_online_devices", n as f64);
        self.handle.run_upkeep();
    }

    pub fn task_backlog(&self, open_tasks: i64) {
        self.gauge("rollcall_task_backlog", open_tasks as f64);
    }

    /// A project's uplink queue: items not yet accepted or refused, and the age of the
    /// oldest (seconds; 0 when empty).
    pub fn uplink_queue(&self, project_id: i64, depth: i64, oldest_age_secs: f64) {
        let l = labels(&[("project", &project_id.to_string())]);
        self.recorder
            .register_gauge(
                &Key::from_parts("rollcall_uplink_queue_depth", l.clone()),
                &META,
            )
            .set(depth as f64);
        self.recorder
            .register_gauge(
                &Key::from_parts("rollcall_uplink_oldest_pending_seconds", l),
                &META,
            )
            .set(oldest_age_secs);
    }

    /// One request to the national platform, by method and outcome (`ok`, `refused`,
    /// `unavailable`, `in_doubt`).
    pub fn uplink_request(&self, method: &str, outcome: &'static str) {
        let l = labels(&[("method", method), ("outcome", outcome)]);
        self.recorder
            .register_counter(&Key::from_parts("rollcall_uplink_requests_total", l), &META)
            .increment(1);
    }

    /// Frames refused by the decoder (the connection is closed).
    pub fn frame_error(&self, code: &str) {
        let l = labels(&[("code", code)]);
        self.recorder
            .register_counter(&Key::from_parts("rollcall_frame_errors_total", l), &META)
            .increment(1);
    }

    fn gauge(&self, name: &'static str, v: f64) {
        self.recorder
            .register_gauge(&Key::from_name(name), &META)
            .set(v);
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn requests_are_counted_by_apicode_transport_and_code() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.request(Some(ApiCode::Heartbeat), Transport::Tcp, OK, ms);
        m.request(Some(ApiCode::Heartbeat), Transport::Tcp, OK, ms);
        m.request(Some(ApiCode::Heartbeat), Transport::Http, OK, ms);
        m.request(Some(ApiCode::Heartbeat), Transport::Tcp, "400_04", ms);
        m.request(None, Transport::Tcp, "400_01", ms);
        let text = m.render();
        let count = |labels: &str| sample(&text, &format!("rollcall_requests_total{{{labels}}}"));
        assert_eq!(
            count(r#"apicode="C_HEARTBEAT",transport="tcp",code="ok""#),
            Some(2.0)
        );
        assert_eq!(
            count(r#"apicode="C_HEARTBEAT",transport="http",code="ok""#),
            Some(1.0)
        );
        assert_eq!(
            count(r#"apicode="C_HEARTBEAT",transport="tcp",code="400_04""#),
            Some(1.0)
        );
        assert_eq!(
            count(r#"apicode="unknown",transport="tcp",code="400_01""#),
            Some(1.0)
        );
        // Successes and refusals of one apicode share its latency histogram.
        assert_eq!(
            sample(
                &text,
                r#"rollcall_request_seconds_count{apicode="C_HEARTBEAT",transport="tcp"}"#
            ),
            Some(3.0)
        );
        // Only what happened is listed.
        assert!(!text.contains("C_SIGN_IN"), "{text}");
    }
}
