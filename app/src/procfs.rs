//! Readers for the Linux figures behind /inspect: /proc (host and process) and the cgroup files
//! that hold a container's own limits. Parsers take text so tests can feed them fixtures.

use std::path::Path;

/// Cumulative CPU time counters from the first line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

impl CpuTimes {
    /// Percent of time busy between `earlier` and `self`; None when no time passed.
    pub fn used_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }
}

/// Parses the aggregate `cpu` line of /proc/stat.
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    if fields.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes { busy: total - idle, total })
}

/// MemTotal and MemAvailable from /proc/meminfo, in bytes.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Seconds since boot from /proc/uptime.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// VmRSS (bytes) and Threads from /proc/self/status.
pub fn parse_process_status(text: &str) -> Option<(u64, u64)> {
    let value = |name: &str| -> Option<u64> {
        text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((value("VmRSS:")? * 1024, value("Threads:")?))
}

/// A cgroup v2 `cpu.max` line: quota and period in microseconds; quota None means "max".
pub fn parse_cpu_max(text: &str) -> Option<(Option<u64>, u64)> {
    let mut it = text.split_whitespace();
    let quota = match it.next()? {
        "max" => None,
        q => Some(q.parse().ok()?),
    };
    Some((quota, it.next()?.parse().ok()?))
}

/// A cgroup memory limit: `max` (v2) or a huge number (v1's "unlimited") means no limit.
pub fn parse_memory_limit(text: &str) -> Option<Option<u64>> {
    let t = text.trim();
    if t == "max" {
        return Some(None);
    }
    let v: u64 = t.parse().ok()?;
    // cgroup v1 reports "no limit" as a page-rounded i64::MAX.
    Some((v < (1u64 << 62)).then_some(v))
}

/// `usage_usec` from a cgroup v2 cpu.stat.
pub fn parse_cpu_stat_usage_usec(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
}

/// What a cgroup says about its own limits and usage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupReading {
    pub version: u8,
    pub memory_max_bytes: Option<u64>,
    pub memory_current_bytes: u64,
    /// CPU quota in cores (quota / period); None when unlimited.
    pub cpu_limit_cores: Option<f64>,
    pub cpu_quota_micros: Option<u64>,
    pub cpu_period_micros: Option<u64>,
    /// Cumulative CPU time used by the cgroup, in microseconds.
    pub cpu_usage_micros: Option<u64>,
}

/// Reads the cgroup the process is in, under `root` (normally /sys/fs/cgroup). Inside a container
/// the container's own cgroup appears at the root. Returns None on a host: cgroup v2's root has no
/// memory.current, and a cgroup v1 hierarchy counts only when it carries a memory limit (a host's
/// v1 root has none; an ECS task always has one).
pub fn read_cgroup(root: &Path) -> Option<CgroupReading> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    if let Some(current) = read("memory.current") {
        let cpu_max = read("cpu.max").and_then(|t| parse_cpu_max(&t));
        return Some(CgroupReading {
            version: 2,
            memory_max_bytes: read("memory.max").and_then(|t| parse_memory_limit(&t)).flatten(),
            memory_current_bytes: current.trim().parse().ok()?,
            cpu_limit_cores: cpu_max.and_then(|(q, p)| Some(q? as f64 / p as f64)),
            cpu_quota_micros: cpu_max.and_then(|(q, _)| q),
            cpu_period_micros: cpu_max.map(|(_, p)| p),
            cpu_usage_micros: read("cpu.stat").and_then(|t| parse_cpu_stat_usage_usec(&t)),
        });
    }
    let usage = read("memory/memory.usage_in_bytes")?;
    let memory_max_bytes = read("memory/memory.limit_in_bytes").and_then(|t| parse_memory_limit(&t)).flatten();
    memory_max_bytes?;
    let quota: Option<i64> = read("cpu/cpu.cfs_quota_us").and_then(|t| t.trim().parse().ok());
    let period: Option<u64> = read("cpu/cpu.cfs_period_us").and_then(|t| t.trim().parse().ok());
    let quota = quota.filter(|q| *q > 0).map(|q| q as u64);
    Some(CgroupReading {
        version: 1,
        memory_max_bytes,
        memory_current_bytes: usage.trim().parse().ok()?,
        cpu_limit_cores: quota.zip(period).map(|(q, p)| q as f64 / p as f64),
        cpu_quota_micros: quota,
        cpu_period_micros: period,
        cpu_usage_micros: read("cpuacct/cpuacct.usage").and_then(|t| t.trim().parse::<u64>().ok()).map(|ns| ns / 1000),
    })
}

/// Open file descriptors of this process.
pub fn count_open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The machine's host name (the container id inside Docker/ECS).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_busy_and_total() {
        let text = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n";
        let t = parse_proc_stat(text).expect("parses");
        assert_eq!(t.total, 981);
        assert_eq!(t.busy, 981 - 820);
        let later = CpuTimes { busy: t.busy + 50, total: t.total + 100 };
        assert_eq!(later.used_percent_since(&t), Some(50.0));
        assert_eq!(t.used_percent_since(&t), None);
    }

    #[test]
    fn meminfo_in_bytes() {
        let text = "MemTotal:       16000 kB\nMemFree:     1000 kB\nMemAvailable:    4000 kB\n";
        assert_eq!(parse_meminfo(text), Some((16000 * 1024, 4000 * 1024)));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn loadavg_uptime_status() {
        assert_eq!(parse_loadavg("0.50 1.25 2.00 1/123 4567\n"), Some([0.5, 1.25, 2.0]));
        assert_eq!(parse_uptime("12345.67 2345.00\n"), Some(12345.67));
        let status = "Name:\tapp\nVmRSS:\t  2048 kB\nThreads:\t5\n";
        assert_eq!(parse_process_status(status), Some((2048 * 1024, 5)));
    }

    #[test]
    fn cgroup_values() {
        assert_eq!(parse_cpu_max("max 100000\n"), Some((None, 100000)));
        assert_eq!(parse_cpu_max("25000 100000\n"), Some((Some(25000), 100000)));
        assert_eq!(parse_memory_limit("max\n"), Some(None));
        assert_eq!(parse_memory_limit("268435456\n"), Some(Some(268435456)));
        assert_eq!(parse_memory_limit("9223372036854771712\n"), Some(None));
        assert_eq!(parse_cpu_stat_usage_usec("usage_usec 1500\nuser_usec 1000\n"), Some(1500));
    }

    #[test]
    fn reads_a_cgroup_v2_directory() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-cg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("memory.current"), "1048576\n").expect("write");
        std::fs::write(dir.join("memory.max"), "268435456\n").expect("write");
        std::fs::write(dir.join("cpu.max"), "25000 100000\n").expect("write");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 42\n").expect("write");
        let r = read_cgroup(&dir).expect("reads");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(r.version, 2);
        assert_eq!(r.memory_current_bytes, 1048576);
        assert_eq!(r.memory_max_bytes, Some(268435456));
        assert_eq!(r.cpu_limit_cores, Some(0.25));
        assert_eq!(r.cpu_usage_micros, Some(42));
    }

    #[test]
    fn no_cgroup_files_means_not_in_a_container() {
        assert_eq!(read_cgroup(Path::new("/nonexistent-cgroup-root")), None);
    }
}
