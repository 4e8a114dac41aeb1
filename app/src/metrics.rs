//! Prometheus metrics: request counts and latency histograms labelled by method, matched route and
//! status (bounded: unmatched paths share one label), plus process figures from the sampler.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::inspect::Inspector;

/// The route label of requests that matched no route: one series, whatever the path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

/// Latency buckets in seconds: 250 µs to ~4 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.00025, 2.0, 15)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    resident_memory: Gauge,
    threads: Gauge,
    open_fds: Gauge,
    start_time: Gauge<f64, AtomicU64>,
    host_cpu_used: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let resident_memory = Gauge::default();
        let threads = Gauge::default();
        let open_fds = Gauge::default();
        let start_time = Gauge::<f64, AtomicU64>::default();
        let host_cpu_used = Gauge::<f64, AtomicU64>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident set size",
            Unit::Bytes,
            resident_memory.clone(),
        );
        registry.register("process_threads", "OS threads of the process", threads.clone());
        registry.register("process_open_fds", "Open file descriptors", open_fds.clone());
        registry.register_with_unit(
            "process_start_time",
            "Start time since the Unix epoch",
            Unit::Seconds,
            start_time.clone(),
        );
        registry.register(
            "host_cpu_used_percent",
            "Host CPU busy over the last sampling interval",
            host_cpu_used.clone(),
        );
        Self { registry, requests, latency, resident_memory, threads, open_fds, start_time, host_cpu_used }
    }

    /// Records one answered request.
    pub fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The exposition text, with process figures from the latest sample.
    pub fn render(&self, inspector: &Inspector) -> Result<String, std::fmt::Error> {
        let s = inspector.latest();
        self.resident_memory.set(s.rss_bytes as i64);
        self.threads.set(s.threads as i64);
        self.open_fds.set(s.open_fds as i64);
        self.start_time.set(inspector.started_unix_seconds());
        self.host_cpu_used.set(s.cpu_used_percent.unwrap_or(0.0));
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps a request method to a label from a closed set.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
