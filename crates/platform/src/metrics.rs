//! Prometheus metrics of one platform instance (PRODUCT.md "Operable").
//!
//! The recorder belongs to the app state, not to the process: `metrics`' global recorder
//! would make two platforms in one test process share counters. Handlers call the typed
//! methods here; `/metrics` renders the text format.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

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

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
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
        Metrics { recorder, handle }
    }

    /// One answered device request: by apicode, transport and result code ("ok" or a code).
    pub fn request(&self, apicode: &str, transport: &str, code: &str, elapsed: Duration) {
        let l = labels(&[
            ("apicode", apicode),
            ("transport", transport),
            ("code", code),
        ]);
        self.recorder
            .register_counter(&Key::from_parts("rollcall_requests_total", l), &META)
            .increment(1);
        let l = labels(&[("apicode", apicode), ("transport", transport)]);
        self.recorder
            .register_histogram(&Key::from_parts("rollcall_request_seconds", l), &META)
            .record(elapsed.as_secs_f64());
    }

    /// Receive time − recordTime of a stored attendance record.
    pub fn upload_latency(&self, millis: i64) {
        self.recorder
            .register_histogram(&Key::from_name("rollcall_upload_latency_seconds"), &META)
            .record(millis.max(0) as f64 / 1000.0);
    }

    /// Sign-ins committed together in one transaction.
    pub fn ingest_batch(&self, size: usize) {
        self.recorder
            .register_histogram(&Key::from_name("rollcall_ingest_batch_size"), &META)
            .record(size as f64);
    }

    pub fn tcp_connections(&self, open: usize) {
        self.gauge("rollcall_tcp_connections", open as f64);
    }

    pub fn online_devices(&self, n: usize) {
        self.gauge("rollcall_online_devices", n as f64);
    }

    pub fn task_backlog(&self, open_tasks: i64) {
        self.gauge("rollcall_task_backlog", open_tasks as f64);
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
