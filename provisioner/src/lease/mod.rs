//! One run at a time per stack: `up`, `down` and `deploy` hold a lease kept in AWS, in SSM
//! Parameter Store under `/konnichiwa/<stack>/lease/<generation>`.
//!
//! PutParameter without Overwrite creates a parameter only if it is absent — the one atomic
//! "create if absent" that needs no extra service. A lease is the parameter with the highest
//! generation; it says who holds it (command, host, pid, CI run, since when) and until when. To
//! take the lease, a run creates the next generation: of two runs racing for it, exactly one
//! succeeds. A lease is free when its holder released it (deleted it), when it expired (the
//! holder renews it every 30 s while it lives), or — at once — when its holder ran on this
//! host and that process is gone (a killed run must not block the next one here).
//! `provisioner unlock` breaks a lease on purpose, like `terraform force-unlock`.
//!
//! Its calls go through a client of their own and are reported apart (`lease` in `--json`),
//! so a no-op `up` still makes no mutating call on the stack.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::ParameterType;
use serde::{Deserialize, Serialize};

use crate::aws::Clients;
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::permission::{Permission, Scope};

/// How long a lease lives without renewal.
pub const TTL: Duration = Duration::from_secs(120);
/// How often a live run renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);
/// How often a waiting run (`--lock-timeout`) looks again.
const POLL: Duration = Duration::from_secs(3);

/// What the lease calls, on `/konnichiwa/<stack>/lease` only.
pub const PERMISSIONS: &[Permission] = &[Permission::new(
    &["ssm:PutParameter", "ssm:GetParametersByPath", "ssm:DeleteParameter"],
    Scope::Own(|c| {
        let p = c.arn("ssm", &format!("parameter{}", path(&c.stack.name)));
        vec![p.clone(), format!("{p}/*")]
    }),
)];

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub command: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot), so a reused pid is not taken for it.
    pub process_start: Option<u64>,
    /// `OWNER/NAME run ID` in GitHub Actions.
    pub ci_run: Option<String>,
    pub user: Option<String>,
    pub since_unix: u64,
    pub expires_unix: u64,
}

impl Holder {
    fn new(command: &str) -> Self {
        let pid = std::process::id();
        let now = now_unix();
        Self {
            command: command.to_owned(),
            host: hostname(),
            pid,
            process_start: process_start(pid),
            ci_run: match (std::env::var("GITHUB_REPOSITORY"), std::env::var("GITHUB_RUN_ID")) {
                (Ok(repo), Ok(run)) => Some(format!("{repo} run {run}")),
                _ => None,
            },
            user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            since_unix: now,
            expires_unix: now + TTL.as_secs(),
        }
    }

    /// True when this record was written by this very process (a create whose answer was lost
    /// and that the SDK retried).
    fn is_this_process(&self) -> bool {
        self.host == hostname() && self.pid == std::process::id() && self.process_start == process_start(self.pid)
    }

    /// Why the lease no longer binds anyone, if it does not.
    pub fn free_because(&self) -> Option<String> {
        if self.expires_unix < now_unix() {
            return Some(format!("it expired {}s ago", now_unix() - self.expires_unix));
        }
        if self.host == hostname() && !process_alive(self.pid, self.process_start) {
            return Some(format!("its holder (pid {}) no longer runs on this host", self.pid));
        }
        None
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
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.since_unix)),
            now_unix().saturating_sub(self.since_unix)
        )
    }
}

fn now_unix() -> u64 {
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

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// True when the process runs and, if its start time is known, is the same process.
fn process_alive(pid: u32, start: Option<u64>) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        // No procfs (not Linux): only expiry frees a lease.
        return true;
    }
    match (process_start(pid), start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// `/konnichiwa/<stack>/lease`.
pub fn path(stack: &str) -> String {
    format!("/konnichiwa/{stack}/lease")
}

fn parameter(stack: &str, generation: u64) -> String {
    format!("{}/{generation:010}", path(stack))
}

/// The lease records of the stack, by generation (normally none or one).
pub async fn records(clients: &Clients, stack: &str) -> Result<Vec<(u64, String, Option<Holder>)>, Error> {
    let mut out = Vec::new();
    let mut pages =
        clients.lease_ssm.get_parameters_by_path().path(path(stack)).recursive(false).into_paginator().send();
    while let Some(page) = pages.next().await {
        for p in page.ctx("read the lease of stack", stack)?.parameters() {
            let name = p.name().unwrap_or_default().to_owned();
            let Some(generation) = name.rsplit('/').next().and_then(|g| g.parse::<u64>().ok()) else { continue };
            let holder = p.value().and_then(|v| serde_json::from_str(v).ok());
            out.push((generation, name, holder));
        }
    }
    out.sort_by_key(|r| r.0);
    Ok(out)
}

async fn delete(clients: &Clients, name: &str) -> Result<(), Error> {
    let r = clients.lease_ssm.delete_parameter().name(name).send().await.ctx("delete the lease record", name);
    gone(r, &["ParameterNotFound"])
}

/// Creates generation `g` unless it exists (false: another run got there first).
async fn create(clients: &Clients, stack: &str, generation: u64, holder: &Holder) -> Result<bool, Error> {
    let name = parameter(stack, generation);
    let value = serde_json::to_string(holder).unwrap_or_default();
    let r = clients
        .lease_ssm
        .put_parameter()
        .name(&name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(false)
        .description(format!("Konnichiwa: who is changing stack {stack} (see `provisioner unlock`)"))
        .send()
        .await
        .ctx("take the lease", &name);
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ParameterAlreadyExists") => Ok(false),
        Err(e) => Err(e),
    }
}

/// A held lease; renewed in the background until released.
#[derive(Debug)]
pub struct Lease {
    clients: Clients,
    stack: String,
    pub generation: u64,
    pub holder: Holder,
    /// How the lease was taken: free, or taken over (and why).
    pub taken: String,
    renewal: tokio::task::JoinHandle<Option<String>>,
}

/// What `--json` reports of the lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseReport {
    pub parameter: String,
    pub holder: Holder,
    pub taken: String,
    pub api_calls: crate::aws::CallCounts,
}

/// Takes the stack's lease for `command`; when another run holds it, waits up to `wait` and then
/// refuses, naming the holder.
pub async fn acquire(clients: &Clients, stack: &str, command: &str, wait: Duration) -> Result<Lease, Error> {
    let give_up = tokio::time::Instant::now() + wait;
    let mut announced = false;
    loop {
        let records = records(clients, stack).await?;
        let top = records.last().map(|(g, _, h)| (*g, h.clone()));
        // Our own create, carried out although its answer was lost: it is ours.
        if let Some((g, Some(h))) = &top
            && h.is_this_process()
            && h.command == command
        {
            let renewal = tokio::spawn(renew(clients.clone(), stack.to_owned(), *g, h.clone()));
            return Ok(Lease {
                clients: clients.clone(),
                stack: stack.to_owned(),
                generation: *g,
                holder: h.clone(),
                taken: "free".into(),
                renewal,
            });
        }
        let (next, taken) = match &top {
            None => (1, "free".to_owned()),
            Some((g, None)) => (g + 1, "taken over from an unreadable record".to_owned()),
            Some((g, Some(h))) => match h.free_because() {
                Some(why) => (g + 1, format!("taken over from {}: {why}", h.describe())),
                None => {
                    if tokio::time::Instant::now() + POLL > give_up {
                        return Err(Error::Locked(format!(
                            "stack {stack} is being changed by {}: one run at a time. Wait for it, or pass \
                             --lock-timeout (e.g. 10m) to wait; if that run is gone on another machine, its lease \
                             expires {}s after its last renewal, or break it now with `provisioner unlock`",
                            h.describe(),
                            h.expires_unix.saturating_sub(now_unix())
                        )));
                    }
                    if !announced {
                        eprintln!("Waiting for the lease of stack {stack}, held by {}…", h.describe());
                        announced = true;
                    }
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            },
        };
        let holder = Holder::new(command);
        if !create(clients, stack, next, &holder).await? {
            continue; // another run took it first: look again
        }
        for (g, name, _) in &records {
            if *g < next {
                delete(clients, name).await?;
            }
        }
        let renewal = tokio::spawn(renew(clients.clone(), stack.to_owned(), next, holder.clone()));
        return Ok(Lease {
            clients: clients.clone(),
            stack: stack.to_owned(),
            generation: next,
            holder,
            taken,
            renewal,
        });
    }
}

/// Renews the lease until aborted; returns why it stopped early (the lease was lost).
async fn renew(clients: Clients, stack: String, generation: u64, mut holder: Holder) -> Option<String> {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match records(&clients, &stack).await {
            Ok(records) => match records.last() {
                Some((g, _, _)) if *g == generation => {}
                Some((_, _, h)) => {
                    let by = h.as_ref().map_or_else(|| "an unreadable record".to_owned(), Holder::describe);
                    return Some(format!("the lease was taken over by {by}"));
                }
                None => return Some("the lease was broken (`provisioner unlock`)".to_owned()),
            },
            Err(e) => tracing::warn!("cannot read the lease to renew it: {e}"),
        }
        holder.expires_unix = now_unix() + TTL.as_secs();
        let name = parameter(&stack, generation);
        let r = clients
            .lease_ssm
            .put_parameter()
            .name(&name)
            .value(serde_json::to_string(&holder).unwrap_or_default())
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await;
        if let Err(e) = r.ctx("renew the lease", &name) {
            tracing::warn!("cannot renew the lease: {e}");
        }
    }
}

impl Lease {
    pub fn parameter(&self) -> String {
        parameter(&self.stack, self.generation)
    }

    /// Releases the lease and reports it (with every call the lease made); an error when it
    /// was lost during the run (someone broke it or took it over).
    pub async fn release(self) -> Result<LeaseReport, Error> {
        let lost = if self.renewal.is_finished() {
            self.renewal.await.ok().flatten()
        } else {
            self.renewal.abort();
            None
        };
        if let Some(why) = lost {
            return Err(Error::Locked(format!(
                "{why} while this run held it: another run may have changed stack {} meanwhile; run `provisioner plan` \
                 to see where it stands",
                self.stack
            )));
        }
        let name = parameter(&self.stack, self.generation);
        delete(&self.clients, &name).await?;
        Ok(LeaseReport {
            parameter: name,
            holder: self.holder,
            taken: self.taken,
            api_calls: self.clients.lease_calls.counts(),
        })
    }
}

/// Breaks the stack's lease: deletes every record; returns who held it.
pub async fn unlock(clients: &Clients, stack: &str) -> Result<Vec<Holder>, Error> {
    let records = records(clients, stack).await?;
    for (_, name, _) in &records {
        delete(clients, name).await?;
    }
    Ok(records.into_iter().filter_map(|(_, _, h)| h).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder::new("up")
    }

    #[test]
    fn a_live_holder_binds_an_expired_or_dead_one_does_not() {
        let me = holder();
        assert_eq!(me.free_because(), None, "this very process, not expired");
        let expired = Holder { expires_unix: now_unix() - 5, ..holder() };
        assert!(expired.free_because().is_some_and(|w| w.contains("expired")));
        // A pid that cannot be running (above the kernel's pid_max), on this host.
        let dead = Holder { pid: 4_194_305, process_start: Some(1), ..holder() };
        assert!(dead.free_because().is_some_and(|w| w.contains("no longer runs on this host")));
        // This pid, but another process (a different start time): the pid was reused.
        let reused = Holder { process_start: me.process_start.map(|s| s + 1), ..holder() };
        assert!(reused.free_because().is_some(), "a reused pid is not the holder");
        // On another host, only expiry frees it.
        let elsewhere = Holder { host: "another-host".into(), pid: 4_194_305, ..holder() };
        assert_eq!(elsewhere.free_because(), None);
    }

    #[test]
    fn records_sort_by_generation_and_name_the_holder() {
        assert_eq!(parameter("konnichiwa", 12), "/konnichiwa/konnichiwa/lease/0000000012");
        let d = holder().describe();
        assert!(d.starts_with("`up` on ") && d.contains(&format!("pid {}", std::process::id())), "{d}");
    }
}
