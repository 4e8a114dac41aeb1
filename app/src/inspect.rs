//! The /inspect report: its JSON types (public, so the monitor deserializes the same structs) and
//! the background sampler that refreshes the figures, so a request never waits on /proc.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::procfs::{self, CgroupReading, CpuTimes};

/// The body of `GET /inspect`. Field names are part of the interface (the monitor reads them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectReport {
    pub service: ServiceInfo,
    pub uptime: Uptime,
    pub cpu: Cpu,
    pub memory: Memory,
    /// The container's own cgroup limits and usage; null when not running in a container.
    pub container: Option<Container>,
    pub process: Process,
    pub sample: SampleInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The service's own name and version are static: no allocation per report.
    pub name: Cow<'static, str>,
    pub version: Cow<'static, str>,
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    pub process_seconds: f64,
    pub system_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub logical_cores: usize,
    /// Host CPU busy over the last sampling interval, 0–100 (null before the second sample).
    pub used_percent: Option<f64>,
    pub load_average: LoadAverage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub cgroup_version: u8,
    /// memory.max; null when unlimited.
    pub memory_max_bytes: Option<u64>,
    /// memory.current.
    pub memory_current_bytes: u64,
    /// memory.current / memory.max × 100; null when unlimited.
    pub memory_used_percent: Option<f64>,
    /// cpu.max as cores (quota / period); null when unlimited.
    pub cpu_limit_cores: Option<f64>,
    pub cpu_quota_micros: Option<u64>,
    pub cpu_period_micros: Option<u64>,
    /// CPU used over the last interval as a percent of the limit (of one core when unlimited).
    pub cpu_used_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub rss_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub requests_served: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleInfo {
    /// When the figures were read, milliseconds since the Unix epoch.
    pub sampled_at_unix_ms: u64,
    pub interval_seconds: f64,
}

/// The figures the sampler refreshes; requests read the latest without waiting.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub system_uptime_seconds: f64,
    pub logical_cores: usize,
    pub cpu_used_percent: Option<f64>,
    pub load_average: [f64; 3],
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub cgroup: Option<CgroupReading>,
    pub container_cpu_used_percent: Option<f64>,
    pub rss_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub sampled_at_unix_ms: u64,
}

/// Shared, cheap-to-read state behind /inspect and /metrics.
#[derive(Debug)]
pub struct Inspector {
    started: Instant,
    started_unix_seconds: f64,
    interval: Duration,
    hostname: String,
    /// Read once: `std::process::id()` is a system call each time.
    pid: u32,
    requests_served: AtomicU64,
    latest: watch::Receiver<Arc<Sample>>,
    publish: watch::Sender<Arc<Sample>>,
    cgroup_root: PathBuf,
}

impl Inspector {
    /// Takes a first sample synchronously, so /inspect has figures from the first request.
    pub fn new(interval: Duration) -> Arc<Self> {
        Self::with_cgroup_root(interval, PathBuf::from("/sys/fs/cgroup"))
    }

    pub fn with_cgroup_root(interval: Duration, cgroup_root: PathBuf) -> Arc<Self> {
        let first = read_sample(&cgroup_root, None, Duration::ZERO);
        let (publish, latest) = watch::channel(Arc::new(first.0));
        let started_unix_seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Arc::new(Self {
            started: Instant::now(),
            started_unix_seconds,
            interval,
            hostname: procfs::hostname(),
            pid: std::process::id(),
            requests_served: AtomicU64::new(0),
            latest,
            publish,
            cgroup_root,
        })
    }

    /// Refreshes the figures every interval until the returned task is aborted.
    pub fn spawn_sampler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut previous: Option<Counters> = None;
            let mut last = Instant::now();
            let mut ticker = tokio::time::interval(this.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let root = this.cgroup_root.clone();
                let elapsed = last.elapsed();
                last = Instant::now();
                // /proc reads are blocking file I/O: keep them off the request workers.
                let taken = tokio::task::spawn_blocking(move || read_sample(&root, previous, elapsed)).await;
                match taken {
                    Ok((sample, counters)) => {
                        previous = Some(counters);
                        this.publish.send_replace(Arc::new(sample));
                    }
                    Err(e) => tracing::warn!(error = %e, "sampling failed"),
                }
            }
        })
    }

    pub fn count_request(&self) {
        self.requests_served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests_served(&self) -> u64 {
        self.requests_served.load(Ordering::Relaxed)
    }

    pub fn latest(&self) -> Arc<Sample> {
        Arc::clone(&self.latest.borrow())
    }

    pub fn process_uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_unix_seconds(&self) -> f64 {
        self.started_unix_seconds
    }

    /// Builds the report from the latest sample, read in place (no reference count touched: the
    /// serving threads share it); a few copies and divisions.
    pub fn report(&self) -> InspectReport {
        let s = self.latest.borrow();
        let used = s.memory_total_bytes.saturating_sub(s.memory_available_bytes);
        InspectReport {
            service: ServiceInfo {
                name: Cow::Borrowed(env!("CARGO_PKG_NAME")),
                version: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
                hostname: self.hostname.clone(),
            },
            uptime: Uptime {
                process_seconds: round2(self.process_uptime().as_secs_f64()),
                system_seconds: s.system_uptime_seconds,
            },
            cpu: Cpu {
                logical_cores: s.logical_cores,
                used_percent: s.cpu_used_percent.map(round2),
                load_average: LoadAverage {
                    one: s.load_average[0],
                    five: s.load_average[1],
                    fifteen: s.load_average[2],
                },
            },
            memory: Memory {
                total_bytes: s.memory_total_bytes,
                used_bytes: used,
                used_percent: round2(percent(used, s.memory_total_bytes)),
            },
            container: s.cgroup.map(|cg| Container {
                cgroup_version: cg.version,
                memory_max_bytes: cg.memory_max_bytes,
                memory_current_bytes: cg.memory_current_bytes,
                memory_used_percent: cg.memory_max_bytes.map(|max| round2(percent(cg.memory_current_bytes, max))),
                cpu_limit_cores: cg.cpu_limit_cores,
                cpu_quota_micros: cg.cpu_quota_micros,
                cpu_period_micros: cg.cpu_period_micros,
                cpu_used_percent: s.container_cpu_used_percent.map(round2),
            }),
            process: Process {
                pid: self.pid,
                rss_bytes: s.rss_bytes,
                threads: s.threads,
                open_fds: s.open_fds,
                requests_served: self.requests_served(),
            },
            sample: SampleInfo {
                sampled_at_unix_ms: s.sampled_at_unix_ms,
                interval_seconds: self.interval.as_secs_f64(),
            },
        }
    }
}

/// Cumulative counters kept between samples to turn into rates.
#[derive(Debug, Clone, Copy)]
struct Counters {
    host_cpu: Option<CpuTimes>,
    cgroup_cpu_micros: Option<u64>,
}

fn read_sample(cgroup_root: &std::path::Path, previous: Option<Counters>, elapsed: Duration) -> (Sample, Counters) {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let host_cpu = read("/proc/stat").and_then(|t| procfs::parse_proc_stat(&t));
    let (memory_total_bytes, memory_available_bytes) =
        read("/proc/meminfo").and_then(|t| procfs::parse_meminfo(&t)).unwrap_or_default();
    let (rss_bytes, threads) =
        read("/proc/self/status").and_then(|t| procfs::parse_process_status(&t)).unwrap_or_default();
    let cgroup = procfs::read_cgroup(cgroup_root);
    let logical_cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let cpu_used_percent =
        host_cpu.zip(previous.and_then(|p| p.host_cpu)).and_then(|(now, before)| now.used_percent_since(&before));
    let container_cpu_used_percent = cgroup.and_then(|cg| {
        let used = cg.cpu_usage_micros?.checked_sub(previous?.cgroup_cpu_micros?)?;
        let window = elapsed.as_micros() as f64 * cg.cpu_limit_cores.unwrap_or(1.0);
        (window > 0.0).then(|| used as f64 * 100.0 / window)
    });

    let sample = Sample {
        system_uptime_seconds: read("/proc/uptime").and_then(|t| procfs::parse_uptime(&t)).unwrap_or_default(),
        logical_cores,
        cpu_used_percent,
        load_average: read("/proc/loadavg").and_then(|t| procfs::parse_loadavg(&t)).unwrap_or_default(),
        memory_total_bytes,
        memory_available_bytes,
        cgroup,
        container_cpu_used_percent,
        rss_bytes,
        threads,
        open_fds: procfs::count_open_fds().unwrap_or_default(),
        sampled_at_unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
    };
    (sample, Counters { host_cpu, cgroup_cpu_micros: cgroup.and_then(|c| c.cpu_usage_micros) })
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
