//! Who holds a lease: the command, the machine it runs on (told apart from containers that share
//! a host name), its process (told apart from a later one with the same pid, and from a zombie),
//! the CI run and the user.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub command: String,
    pub host: String,
    /// What tells this machine and pid namespace apart from another with the same host name
    /// (CI runners' containers share theirs): machine id, boot id and pid namespace, and the CI
    /// job. None in records of earlier versions: such a holder is judged by expiry alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    pub pid: u32,
    /// The process's start time (clock ticks since boot), so a reused pid is not taken for it.
    pub process_start: Option<u64>,
    /// `OWNER/NAME run ID` in GitHub Actions.
    pub ci_run: Option<String>,
    pub user: Option<String>,
    pub since_unix: u64,
    /// When the holder's own clock said the lease expires (shown, not trusted: expiry is judged
    /// by SSM's time).
    pub expires_unix: u64,
}

impl Holder {
    pub fn new(command: &str, ttl_secs: u64) -> Self {
        let pid = std::process::id();
        let now = now_unix();
        Self {
            command: command.to_owned(),
            host: hostname(),
            host_id: Some(host_id()),
            pid,
            process_start: process_start(pid),
            ci_run: match (std::env::var("GITHUB_REPOSITORY"), std::env::var("GITHUB_RUN_ID")) {
                (Ok(repo), Ok(run)) => Some(format!("{repo} run {run}")),
                _ => None,
            },
            user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            since_unix: now,
            expires_unix: now + ttl_secs,
        }
    }

    /// True when the holder ran in this very machine and pid namespace.
    pub fn is_here(&self) -> bool {
        self.host_id.as_deref() == Some(host_id().as_str())
    }

    /// True when this record was written by this very process (a create whose answer was lost
    /// and that the SDK retried).
    pub fn is_this_process(&self) -> bool {
        self.is_here() && self.pid == std::process::id() && self.process_start == process_start(self.pid)
    }

    /// Why the holder no longer holds anything though its lease has not expired: it ran here
    /// and its process is gone (or a zombie). None when it may still be running.
    pub fn gone_because(&self) -> Option<String> {
        (self.is_here() && !process_alive(self.pid, self.process_start))
            .then(|| format!("its holder (pid {}) no longer runs on this host", self.pid))
    }

    /// `up on HOST (pid N, USER, CI run) since T`.
    pub fn describe(&self) -> String {
        let mut who = vec![format!("pid {}", self.pid)];
        who.extend(self.user.clone());
        who.extend(self.ci_run.clone());
        format!(
            "`{}` on {} ({}) since {} ({}s ago)",
            self.command,
            self.host,
            who.join(", "),
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(self.since_unix)),
            now_unix().saturating_sub(self.since_unix)
        )
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// This machine, boot and pid namespace (and CI job), as one short digest: two containers with
/// one host name differ in their pid namespace; a reboot changes the boot id.
pub fn host_id() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
    let pid_namespace = std::fs::read_link("/proc/self/ns/pid").map(|p| p.display().to_string()).unwrap_or_default();
    let job = ["GITHUB_RUN_ID", "GITHUB_JOB", "CI_JOB_ID"].map(|v| std::env::var(v).unwrap_or_default()).join("/");
    let parts = [read("/etc/machine-id"), read("/proc/sys/kernel/random/boot_id"), pid_namespace, job, hostname()];
    crate::image::digest(parts.join("\n").as_bytes()).trim_start_matches("sha256:").chars().take(16).collect()
}

/// Fields 3 and 22 of /proc/PID/stat: the state (R, S, Z…) and when the process started, in
/// clock ticks since boot.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

pub fn process_start(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// True when the process runs and, if its start time is known, is the same process. A zombie
/// (killed, not yet reaped by a parent that never will) or a dying process does not run.
pub fn process_alive(pid: u32, start: Option<u64>) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        // No procfs (not Linux): only expiry frees a lease.
        return true;
    }
    match (stat(pid), start) {
        (None, _) => false,
        (Some(('Z' | 'X' | 'x', _)), _) => false,
        (Some((_, now)), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_reused_or_zombie_pid_here_is_gone_one_elsewhere_is_not_judged() {
        let me = Holder::new("up", 120);
        assert_eq!(me.gone_because(), None, "this very process");
        assert!(me.is_this_process());
        // A pid that cannot be running (above the kernel's pid_max), here.
        let dead = Holder { pid: 4_194_305, process_start: Some(1), ..me.clone() };
        assert!(dead.gone_because().is_some_and(|w| w.contains("no longer runs on this host")));
        // This pid, but another process (a different start time): the pid was reused.
        let reused = Holder { process_start: me.process_start.map(|s| s + 1), ..me.clone() };
        assert!(reused.gone_because().is_some(), "a reused pid is not the holder");
        // Same host name, another container (pid namespace): not judged here.
        let other_container = Holder { host_id: Some("0123456789abcdef".into()), pid: 4_194_305, ..me.clone() };
        assert_eq!(other_container.gone_because(), None);
        let old_record = Holder { host_id: None, pid: 4_194_305, ..me };
        assert_eq!(old_record.gone_because(), None, "a record without a host id waits for its expiry");
    }

    #[test]
    fn a_zombie_does_not_run() {
        // A child that exits and is not reaped (yet) is a zombie: /proc/PID/stat still exists.
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let start = process_start(pid);
        let mut state = None;
        for _ in 0..200 {
            state = stat(pid).map(|s| s.0);
            if state == Some('Z') {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(state, Some('Z'), "the child should be a zombie until reaped");
        assert!(!process_alive(pid, start), "a zombie holds no lease");
        let _ = child.wait();
    }
}
