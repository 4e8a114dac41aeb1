//! One run at a time per stack: `up`, `down` and `deploy` hold a lease kept in AWS, in SSM
//! Parameter Store under `/konnichiwa/<stack>/lease/<generation>`.
//!
//! PutParameter without Overwrite creates a parameter only if it is absent — the one atomic
//! "create if absent" that needs no extra service. A lease is the record with the highest
//! generation; it says who holds it (command, host, pid, CI run, since when) and is never
//! rewritten. To take the lease, a run creates the next generation: of two runs racing for it,
//! exactly one succeeds. The holder renews it by rewriting a heartbeat beside the record
//! (`<generation>/renewed`), so a renewal that races `provisioner unlock` can only leave a
//! heartbeat without a record, which binds nobody. A lease is free when its holder released it
//! (deleted it); when it expired — no renewal for the TTL, judged by SSM's own clock (the
//! parameters' LastModifiedDate against the Date of SSM's answer), so a skewed clock on either
//! side cannot take a live lease; or at once when its holder ran on this machine and pid
//! namespace (`holder::host_id`) and its process is gone or a zombie.
//!
//! A run that loses its lease — another run took it over, `unlock` broke it, or renewals failed
//! for the TTL so that another run may take it — stops before its next mutating call: the
//! stack's clients refuse any (`CallLog::fence`).
//!
//! Its calls go through a client of their own and are reported apart (`lease` in `--json`),
//! so a no-op `up` still makes no mutating call on the stack.

pub mod holder;

use std::time::{Duration, SystemTime};

use aws_sdk_ssm::types::ParameterType;
use serde::Serialize;

pub use holder::Holder;

use crate::aws::Clients;
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::permission::{Permission, Scope};

/// The variable that sets the lease's time to live (default 2m; renewed every quarter of it).
pub const TTL_ENV: &str = "KONNICHIWA_LEASE_TTL";

/// How long a lease lives without renewal: `KONNICHIWA_LEASE_TTL`, else two minutes.
pub fn ttl() -> Duration {
    std::env::var(TTL_ENV)
        .ok()
        .and_then(|v| stack::parse_duration(&v).ok())
        .filter(|d| *d >= Duration::from_secs(1))
        .unwrap_or(Duration::from_secs(120))
}

/// How often a live run renews it.
fn renew_every() -> Duration {
    ttl() / 4
}

/// How often a waiting run (`--lock-timeout`) looks again.
fn poll() -> Duration {
    renew_every().min(Duration::from_secs(3))
}

/// What the lease calls, on `/konnichiwa/<stack>/lease` only.
pub const PERMISSIONS: &[Permission] = &[Permission::new(
    &["ssm:PutParameter", "ssm:GetParametersByPath", "ssm:DeleteParameter"],
    Scope::Own(|c| {
        let p = c.arn("ssm", &format!("parameter{}", path(&c.stack.name)));
        vec![p.clone(), format!("{p}/*")]
    }),
)];

/// `/konnichiwa/<stack>/lease`.
pub fn path(stack: &str) -> String {
    format!("/konnichiwa/{stack}/lease")
}

fn parameter(stack: &str, generation: u64) -> String {
    format!("{}/{generation:010}", path(stack))
}

fn heartbeat(stack: &str, generation: u64) -> String {
    format!("{}/renewed", parameter(stack, generation))
}

/// One generation of the lease as SSM holds it.
#[derive(Debug, Clone)]
pub struct Record {
    pub generation: u64,
    pub name: String,
    pub holder: Option<Holder>,
    /// When it was last renewed, by SSM's clock (the record's or its heartbeat's LastModifiedDate).
    pub renewed: Option<SystemTime>,
}

/// The lease's records by generation, what renewals left without a record, and SSM's time.
#[derive(Debug)]
struct Listing {
    records: Vec<Record>,
    orphans: Vec<String>,
    now: SystemTime,
}

fn system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

async fn list(clients: &Clients, stack: &str) -> Result<Listing, Error> {
    let base = format!("{}/", path(stack));
    let mut records: Vec<Record> = Vec::new();
    let mut beats: Vec<(u64, String, Option<SystemTime>)> = Vec::new();
    let mut pages =
        clients.lease_ssm.get_parameters_by_path().path(path(stack)).recursive(true).into_paginator().send();
    while let Some(page) = pages.next().await {
        for p in page.ctx("read the lease of stack", stack)?.parameters() {
            let name = p.name().unwrap_or_default().to_owned();
            let modified = p.last_modified_date().and_then(system_time);
            let Some(rest) = name.strip_prefix(&base) else { continue };
            let (generation, beat) = match rest.split_once('/') {
                Some((g, "renewed")) => (g, true),
                Some(_) => continue,
                None => (rest, false),
            };
            let Ok(generation) = generation.parse::<u64>() else { continue };
            if beat {
                beats.push((generation, name, modified));
            } else {
                let holder = p.value().and_then(|v| serde_json::from_str(v).ok());
                records.push(Record { generation, name, holder, renewed: modified });
            }
        }
    }
    let mut orphans = Vec::new();
    for (generation, name, modified) in beats {
        match records.iter_mut().find(|r| r.generation == generation) {
            Some(r) => r.renewed = r.renewed.max(modified),
            None => orphans.push(name),
        }
    }
    records.sort_by_key(|r| r.generation);
    Ok(Listing { records, orphans, now: clients.lease_clock.now() })
}

/// How long ago a lease last renewed at `renewed` expired at `now` (both SSM's times), if it did.
pub fn expired_for(renewed: Option<SystemTime>, now: SystemTime, ttl: Duration) -> Option<Duration> {
    let renewed = renewed?;
    now.duration_since(renewed).ok().and_then(|age| age.checked_sub(ttl)).filter(|d| !d.is_zero())
}

/// The lease records of the stack, by generation (normally none or one).
pub async fn records(clients: &Clients, stack: &str) -> Result<Vec<(u64, String, Option<Holder>)>, Error> {
    Ok(list(clients, stack).await?.records.into_iter().map(|r| (r.generation, r.name, r.holder)).collect())
}

async fn delete(clients: &Clients, name: &str) -> Result<(), Error> {
    let r = clients.lease_ssm.delete_parameter().name(name).send().await.ctx("delete the lease record", name);
    gone(r)
}

/// Deletes a generation's record and heartbeat.
async fn delete_generation(clients: &Clients, stack: &str, generation: u64) -> Result<(), Error> {
    delete(clients, &heartbeat(stack, generation)).await?;
    delete(clients, &parameter(stack, generation)).await
}

async fn put(clients: &Clients, name: &str, value: String, overwrite: bool, what: &'static str) -> Result<bool, Error> {
    let r = clients
        .lease_ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(overwrite)
        .description("Konnichiwa: who is changing the stack (see `provisioner unlock`)")
        .send()
        .await
        .ctx(what, name);
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.is_already_there() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates generation `g` unless it exists (false: another run got there first).
async fn create(clients: &Clients, stack: &str, generation: u64, holder: &Holder) -> Result<bool, Error> {
    let value = serde_json::to_string(holder).unwrap_or_default();
    put(clients, &parameter(stack, generation), value, false, "take the lease").await
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
    renewal: tokio::task::JoinHandle<()>,
}

/// What `--json` reports of the lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseReport {
    pub parameter: String,
    pub holder: Holder,
    pub taken: String,
    pub api_calls: crate::aws::CallCounts,
}

/// Why the top record does not bind anyone (None: it does, wait or refuse).
fn free_because(listing: &Listing, record: &Record) -> Option<String> {
    let Some(h) = &record.holder else { return Some("taken over from an unreadable record".into()) };
    if let Some(ago) = expired_for(record.renewed, listing.now, ttl()) {
        return Some(format!(
            "taken over from {}: it expired {}s ago (no renewal for {}s by SSM's clock)",
            h.describe(),
            ago.as_secs(),
            ttl().as_secs()
        ));
    }
    h.gone_because().map(|why| format!("taken over from {}: {why}", h.describe()))
}

/// Takes the stack's lease for `command`; when another run holds it, waits up to `wait` and then
/// refuses, naming the holder.
pub async fn acquire(clients: &Clients, stack: &str, command: &str, wait: Duration) -> Result<Lease, Error> {
    let give_up = tokio::time::Instant::now() + wait;
    let mut announced = false;
    loop {
        let listing = list(clients, stack).await?;
        let top = listing.records.last();
        // Our own create, carried out although its answer was lost: it is ours.
        if let Some(Record { generation, holder: Some(h), .. }) = top
            && h.is_this_process()
            && h.command == command
        {
            return Ok(Lease::held(clients, stack, *generation, h.clone(), "free".into()));
        }
        let (next, taken) = match top {
            None => (1, "free".to_owned()),
            Some(record) => match free_because(&listing, record) {
                Some(why) => (record.generation + 1, why),
                None => {
                    let h = record.holder.as_ref().map_or_else(|| "an unreadable record".into(), Holder::describe);
                    if tokio::time::Instant::now() + poll() > give_up {
                        return Err(Error::Locked(format!(
                            "stack {stack} is being changed by {h}: one run at a time. Wait for it, or pass \
                             --lock-timeout (e.g. 10m) to wait; if that run is gone on another machine, its lease \
                             expires {}s after its last renewal, or break it now with `provisioner unlock`",
                            ttl().as_secs()
                        )));
                    }
                    if !announced {
                        eprintln!("Waiting for the lease of stack {stack}, held by {h}…");
                        announced = true;
                    }
                    tokio::time::sleep(poll()).await;
                    continue;
                }
            },
        };
        let holder = Holder::new(command, ttl().as_secs());
        if !create(clients, stack, next, &holder).await? {
            continue; // another run took it first: look again
        }
        for r in listing.records.iter().filter(|r| r.generation < next) {
            delete_generation(clients, stack, r.generation).await?;
        }
        for orphan in &listing.orphans {
            delete(clients, orphan).await?;
        }
        return Ok(Lease::held(clients, stack, next, holder, taken));
    }
}

impl Lease {
    fn held(clients: &Clients, stack: &str, generation: u64, holder: Holder, taken: String) -> Self {
        let renewal = tokio::spawn(renew(clients.clone(), stack.to_owned(), generation));
        Self { clients: clients.clone(), stack: stack.to_owned(), generation, holder, taken, renewal }
    }

    pub fn parameter(&self) -> String {
        parameter(&self.stack, self.generation)
    }

    /// Releases the lease and reports it (with every call the lease made); an error when it
    /// was lost during the run (someone broke it or took it over).
    pub async fn release(self) -> Result<LeaseReport, Error> {
        self.renewal.abort();
        if let Some(why) = self.clients.calls.fenced() {
            return Err(Error::Locked(format!(
                "{why}: this run stopped changing stack {} there, and another run may have changed it meanwhile; \
                 run `provisioner plan` to see where it stands",
                self.stack
            )));
        }
        delete_generation(&self.clients, &self.stack, self.generation).await?;
        Ok(LeaseReport {
            parameter: parameter(&self.stack, self.generation),
            holder: self.holder,
            taken: self.taken,
            api_calls: self.clients.lease_calls.counts(),
        })
    }
}

/// Renews the lease until aborted. When it is lost — taken over, broken, or not renewed for so
/// long that another run may take it — fences the stack's clients: no mutating call goes out
/// after that.
async fn renew(clients: Clients, stack: String, generation: u64) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(renew_every()).await;
        // Each look and each renewal within one period, so a throttled SSM cannot hold the
        // judgement below back.
        let lost = match tokio::time::timeout(renew_every(), list(&clients, &stack))
            .await
            .unwrap_or_else(|_| Err(Error::Refused("no answer within the renewal period".into())))
        {
            Ok(listing) => match listing.records.last() {
                Some(r) if r.generation == generation => None,
                Some(r) => Some(format!(
                    "the lease was taken over by {}",
                    r.holder.as_ref().map_or_else(|| "an unreadable record".to_owned(), Holder::describe)
                )),
                None => Some("the lease was broken (`provisioner unlock`)".to_owned()),
            },
            Err(e) => {
                tracing::warn!("cannot read the lease to renew it: {e}");
                None
            }
        };
        if lost.is_none() {
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let name = heartbeat(&stack, generation);
            let renewal = put(&clients, &name, now, true, "renew the lease");
            match tokio::time::timeout(renew_every(), renewal).await {
                Ok(Ok(_)) => last_renewed = tokio::time::Instant::now(),
                Ok(Err(e)) => tracing::warn!("cannot renew the lease: {e}"),
                Err(_) => tracing::warn!("cannot renew the lease: no answer within the renewal period"),
            }
        }
        // Another run may take a lease not renewed for the TTL: stop changing before it can.
        let unrenewed = last_renewed.elapsed();
        let lost = lost.or_else(|| {
            (unrenewed + renew_every() >= ttl())
                .then(|| format!("the lease could not be renewed for {}s", unrenewed.as_secs()))
        });
        if let Some(why) = lost {
            tracing::warn!("{why}: this run makes no further change to stack {stack}");
            clients.calls.fence(&why);
            return;
        }
    }
}

/// Breaks the stack's lease: deletes every record (and heartbeat); returns who held it.
pub async fn unlock(clients: &Clients, stack: &str) -> Result<Vec<Holder>, Error> {
    let listing = list(clients, stack).await?;
    for r in &listing.records {
        delete_generation(clients, stack, r.generation).await?;
    }
    for orphan in &listing.orphans {
        delete(clients, orphan).await?;
    }
    Ok(listing.records.into_iter().filter_map(|r| r.holder).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_judged_by_one_clock() {
        let ttl = Duration::from_secs(120);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let ago = |s: u64| Some(now - Duration::from_secs(s));
        assert_eq!(expired_for(ago(30), now, ttl), None, "renewed 30 s ago");
        assert_eq!(expired_for(ago(120), now, ttl), None, "exactly the TTL");
        assert_eq!(expired_for(ago(150), now, ttl), Some(Duration::from_secs(30)));
        // A renewal "in the future" (the server's clocks disagree by a little) is not expired.
        assert_eq!(expired_for(Some(now + Duration::from_secs(5)), now, ttl), None);
        assert_eq!(expired_for(None, now, ttl), None, "unknown: not expired");
    }

    #[test]
    fn records_and_heartbeats_live_side_by_side() {
        assert_eq!(parameter("konnichiwa", 12), "/konnichiwa/konnichiwa/lease/0000000012");
        assert_eq!(heartbeat("konnichiwa", 12), "/konnichiwa/konnichiwa/lease/0000000012/renewed");
        let d = Holder::new("up", 120).describe();
        assert!(d.starts_with("`up` on ") && d.contains(&format!("pid {}", std::process::id())), "{d}");
    }
}
