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
    /// The service's own routes are static; only routes added beside them (tests) are owned.
    pub route: std::borrow::Cow<'static, str>,
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

/// The two text formats Prometheus scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The classic text format 0.0.4 (`text/plain`), which every scraper and `promtool` read.
    Classic,
    /// OpenMetrics 1.0 (units, `# EOF`), which Prometheus asks for first.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `Accept` names it, as Prometheus's does; the classic format otherwise.
    pub fn from_accept(accept: &str) -> Self {
        if accept.split(',').any(|part| part.trim().starts_with("application/openmetrics-text")) {
            Self::OpenMetrics
        } else {
            Self::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// OpenMetrics text to the classic format: a counter's HELP and TYPE name its `_total` samples,
/// and the UNIT lines and the `# EOF` marker, which the classic format lacks, go.
fn to_classic(open_metrics: &str) -> String {
    let counters: Vec<&str> =
        open_metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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
        registry.register_with_unit(
            "host_cpu_used",
            "Share of the host's CPU time busy over the last sampling interval (0 to 1)",
            Unit::Other("ratio".to_owned()),
            host_cpu_used.clone(),
        );
        Self { registry, requests, latency, resident_memory, threads, open_fds, start_time, host_cpu_used }
    }

    /// Records one answered request.
    pub fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The exposition text in `format`, with process figures from the latest sample.
    pub fn render(&self, inspector: &Inspector, format: Format) -> Result<String, std::fmt::Error> {
        let s = inspector.latest();
        self.resident_memory.set(s.rss_bytes as i64);
        self.threads.set(s.threads as i64);
        self.open_fds.set(s.open_fds as i64);
        self.start_time.set(inspector.started_unix_seconds());
        self.host_cpu_used.set(s.cpu_used_percent.unwrap_or(0.0) / 100.0);
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(match format {
            Format::OpenMetrics => out,
            Format::Classic => to_classic(&out),
        })
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
