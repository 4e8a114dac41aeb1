//! The load engine: closed model (users that loop over the mix, as many at each moment as the
//! profile asks for, with optional think time) and open model (arrivals at the times the
//! profile's rate gives, latency measured from each request's intended send time so a stalled
//! server cannot hide its queueing). Each request is written once, as bytes, before the run, and
//! its answer judged by its check (status, and a text of the body only when asked). Each user or
//! connection owns one keep-alive HTTP/1.1
//! connection (over TLS for `https://` targets; the exchange is `h1`'s: one write and usually
//! one read), opens a new one only when the server closed it, and sends its samples in batches on
//! a channel to the collector; how many connections were opened and how long each took to set up
//! (TCP connect and TLS handshake) are measured beside the requests.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;

use crate::guard::Guard;
use memchr::memmem::Finder;
use stack::validate::API_KEY_REFERENCE;

use crate::h1::{Expect, H1, H1Error};
use crate::live::Progress;
use crate::scenario::{Check, Picker, Request};
use crate::stages::Profile;
use crate::stats::{CheckFailure, RunStats};
use crate::tls::{self, Tls};

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub base_path: String,
    /// Set for `https://` targets.
    pub tls: Option<Tls>,
}

/// Resolves an http:// or https:// URL (the service's, from `provisioner outputs`); `ca_certs`
/// are trusted besides the system's and webpki's roots for https.
pub async fn resolve(url: &str, ca_certs: &[rustls::pki_types::CertificateDer<'static>]) -> Result<Target, String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| format!("--host {url:?} is not a URL ({e}); write e.g. https://api.example.com"))?;
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("--host {url:?} must start with http:// or https://")),
    };
    let authority = uri.authority().ok_or_else(|| format!("--host {url:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let host = authority.host().trim_matches(['[', ']']);
    let tls = if secure { Some(Tls::new(host, ca_certs)?) } else { None };
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let host_header = HeaderValue::from_str(authority.as_str()).map_err(|e| format!("bad host {authority}: {e}"))?;
    Ok(Target {
        url: url.trim_end_matches('/').to_owned(),
        addr,
        host: host_header,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        tls,
    })
}

/// How load is applied; the profile says how much, second by second.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Closed { profile: Profile, think_time: Option<(Duration, Duration)> },
    Open { profile: Profile, connections: u32 },
}

impl Model {
    pub fn profile(&self) -> &Profile {
        match self {
            Self::Closed { profile, .. } | Self::Open { profile, .. } => profile,
        }
    }
}

/// A whole run's settings.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub target: Target,
    pub model: Model,
    pub timeout: Duration,
    pub requests: Vec<Request>,
    pub api_key: Option<String>,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A status of 400 or more, where no status was checked for.
    Status(u16),
    /// A status the request's check does not list.
    Unexpected(u16),
    /// The body lacks the text the check looks for.
    Body,
    Connect,
    Timeout,
    Io,
}

impl Failure {
    pub fn kind(self) -> String {
        match self {
            Self::Status(s) => format!("HTTP {s}"),
            Self::Unexpected(s) => format!("HTTP {s}, not a status checked for"),
            Self::Body => "body without the text checked for".into(),
            Self::Connect => "connect error".into(),
            Self::Timeout => "timeout".into(),
            Self::Io => "connection error".into(),
        }
    }

    /// The check it failed, if it is an answer that failed one.
    pub fn check(self) -> Option<CheckFailure> {
        match self {
            Self::Status(_) | Self::Unexpected(_) => Some(CheckFailure::Status),
            Self::Body => Some(CheckFailure::Body),
            Self::Connect | Self::Timeout | Self::Io => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    endpoint: u16,
    latency_us: u64,
    failure: Option<Failure>,
    done: Instant,
    bytes: u64,
    /// Microseconds it took to open the connection this request had to open (0: reused one).
    setup_us: u64,
}

/// One request as sent (its bytes, built once) and judged (its check, its pause after).
#[derive(Debug)]
struct Prepared {
    bytes: Vec<u8>,
    head: bool,
    check: Check,
    /// The searcher of `check.body_contains`, built once.
    finder: Option<Finder<'static>>,
    think_time: Option<(Duration, Duration)>,
}

impl Prepared {
    /// `r` to `path` (under the target's base) on `host`, `${API_KEY}` replaced by `api_key`.
    fn new(r: &Request, path: &str, host: &HeaderValue, api_key: Option<&str>) -> Result<Self, String> {
        let mut bytes = Vec::with_capacity(160 + r.body.as_ref().map_or(0, String::len));
        for part in [r.method.as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1\r\nHost: ", host.as_bytes()] {
            bytes.extend_from_slice(part);
        }
        if !r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
            bytes.extend_from_slice(
                concat!("\r\nUser-Agent: konnichiwa-loadtest/", env!("CARGO_PKG_VERSION")).as_bytes(),
            );
        }
        for (key, value) in &r.headers {
            let value = if value.contains(API_KEY_REFERENCE) {
                let key = api_key.ok_or_else(|| format!("{}: a header needs API_KEY, which is not set", r.name))?;
                HeaderValue::from_str(&value.replace(API_KEY_REFERENCE, key))
                    .map_err(|_| "API_KEY holds characters a header cannot carry".to_owned())?
            } else {
                HeaderValue::from_str(value).map_err(|_| format!("{}: header {key} cannot carry its value", r.name))?
            };
            for part in [b"\r\n", key.as_bytes(), b": ", value.as_bytes()] {
                bytes.extend_from_slice(part);
            }
        }
        // A request that may have a body says how long it is, even when empty.
        if r.body.is_some() || matches!(r.method.as_str(), "POST" | "PUT" | "PATCH") {
            let length = r.body.as_ref().map_or(0, String::len);
            bytes.extend_from_slice(format!("\r\nContent-Length: {length}").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes.extend_from_slice(r.body.as_deref().unwrap_or_default().as_bytes());
        let finder = r.check.body_contains.as_ref().map(|text| Finder::new(text.as_bytes()).into_owned());
        Ok(Self { bytes, head: r.method == "HEAD", check: r.check.clone(), finder, think_time: r.think_time })
    }

    fn expect(&self) -> Expect<'_> {
        Expect { head: self.head, body_contains: self.finder.as_ref() }
    }

    /// What the answer `(status, body bytes, whether the body holds the text looked for)` says
    /// of the request: a failure when it fails its check.
    fn judge(&self, status: u16, contains: Option<bool>) -> Option<Failure> {
        if !self.check.status_passes(status) {
            Some(if self.check.statuses.is_empty() { Failure::Status(status) } else { Failure::Unexpected(status) })
        } else if contains == Some(false) {
            Some(Failure::Body)
        } else {
            None
        }
    }
}

/// An open connection, plain or over TLS.
enum Link {
    Plain(H1<TcpStream>),
    Tls(Box<H1<TlsStream<TcpStream>>>),
}

impl Link {
    async fn exchange(&mut self, request: &[u8], expect: Expect<'_>) -> Result<crate::h1::Answer, H1Error> {
        match self {
            Self::Plain(h) => h.exchange(request, expect).await,
            Self::Tls(h) => h.exchange(request, expect).await,
        }
    }
}

/// A keep-alive connection that reconnects when the server closed it.
struct Connection {
    addr: SocketAddr,
    tls: Option<Tls>,
    link: Option<Link>,
    /// Set by a `send` that had to open the connection: how long that took, in microseconds.
    opened_us: u64,
    watchdog: Watchdog,
}

impl Connection {
    fn new(target: &Target) -> Self {
        Self { addr: target.addr, tls: target.tls.clone(), link: None, opened_us: 0, watchdog: Watchdog::default() }
    }

    /// Sends `req`; the failure its answer is, if any, and the body's size. A kept-alive
    /// connection the server closed while idle (no byte of an answer: it had not read the
    /// request) is opened again and the request sent once more, whatever its method.
    async fn send(&mut self, req: &Prepared, timeout: Duration) -> Result<(Option<Failure>, u64), Failure> {
        self.opened_us = 0;
        for attempt in 0..2 {
            let reused = self.link.is_some();
            if !reused {
                let began = Instant::now();
                let opened = tokio::time::timeout(timeout, connect(self.addr, self.tls.as_ref()));
                self.link = Some(opened.await.map_err(|_| Failure::Connect)??);
                self.opened_us = (began.elapsed().as_micros() as u64).max(1);
            }
            let Some(link) = self.link.as_mut() else { return Err(Failure::Connect) };
            match self.watchdog.limit(Instant::now() + timeout, link.exchange(&req.bytes, req.expect())).await {
                Ok(Ok(answer)) => {
                    if !answer.keep_alive {
                        self.link = None;
                    }
                    return Ok((req.judge(answer.status, answer.contains), answer.body_bytes));
                }
                Ok(Err(H1Error::Closed)) if reused && attempt == 0 => self.link = None,
                Ok(Err(_)) => {
                    self.link = None;
                    return Err(Failure::Io);
                }
                Err(_) => {
                    self.link = None;
                    return Err(Failure::Timeout);
                }
            }
        }
        Err(Failure::Io)
    }
}

async fn connect(addr: SocketAddr, tls: Option<&Tls>) -> Result<Link, Failure> {
    let stream = TcpStream::connect(addr).await.map_err(|_| Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(match tls {
        None => Link::Plain(H1::new(stream)),
        Some(tls) => Link::Tls(Box::new(H1::new(tls.handshake(stream).await.map_err(|_| Failure::Connect)?))),
    })
}

/// Batches samples so the channel carries one message per ~128 requests.
struct Batcher {
    tx: mpsc::UnboundedSender<Vec<Sample>>,
    batch: Vec<Sample>,
    last_flush: Instant,
}

impl Batcher {
    fn new(tx: mpsc::UnboundedSender<Vec<Sample>>) -> Self {
        Self { tx, batch: Vec::with_capacity(128), last_flush: Instant::now() }
    }

    fn push(&mut self, s: Sample) {
        self.batch.push(s);
        if self.batch.len() >= 128 || s.done.duration_since(self.last_flush) >= Duration::from_millis(200) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let _ = self.tx.send(std::mem::replace(&mut self.batch, Vec::with_capacity(128)));
        }
        self.last_flush = Instant::now();
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Sample {
    /// The sample of request `i` that ended now with `result` (an answer that failed its check
    /// is a failure), its latency counted from `origin` (when it was sent, or when it was due).
    fn of(i: usize, origin: Instant, result: Result<(Option<Failure>, u64), Failure>, setup_us: u64) -> Self {
        let done = Instant::now();
        let (failure, bytes) = match result {
            Ok(answered) => answered,
            Err(f) => (Some(f), 0),
        };
        let latency_us = done.duration_since(origin).as_micros() as u64;
        Self { endpoint: i as u16, latency_us, failure, done, bytes, setup_us }
    }
}

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Interrupted,
    /// `--abort-on-fail`: an SLO can no longer be met, for this reason.
    Aborted(String),
}

/// Whether the run was told to stop early (an interrupt, or an SLO that can no longer be met):
/// checked between requests, and raced against every wait and request so that a stop takes
/// effect at once. The first reason given stays.
#[derive(Debug, Clone)]
pub struct Stop {
    tx: Arc<tokio::sync::watch::Sender<Option<StopReason>>>,
    rx: tokio::sync::watch::Receiver<Option<StopReason>>,
}

impl Default for Stop {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(None);
        Self { tx: Arc::new(tx), rx }
    }
}

impl Stop {
    /// Stops the run (unless it was stopped already).
    pub fn request(&self, reason: StopReason) {
        self.tx.send_if_modified(|r| {
            let first = r.is_none();
            if first {
                *r = Some(reason);
            }
            first
        });
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.rx.borrow().is_some()
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.rx.borrow().clone()
    }

    /// One task's waiter for the stop, to race its waits and requests against.
    fn waiter(&self) -> StopWaiter {
        let mut rx = self.rx.clone();
        let stopped = Box::pin(async move {
            let _ = rx.wait_for(Option::is_some).await;
        });
        StopWaiter { stop: self.clone(), stopped: Some(stopped) }
    }
}

/// One task's view of the stop: a waiter registered once for the task's life and raced against
/// each of its waits and requests (registering and removing a waiter for every request was
/// about 1% of the generator's CPU; docs/BENCHMARKS.md).
struct StopWaiter {
    stop: Stop,
    /// None once the stop has come.
    stopped: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl StopWaiter {
    fn requested(&self) -> bool {
        self.stopped.is_none() || self.stop.requested()
    }

    /// Runs `work` unless the stop comes first (None then). `work` is polled first: an answer
    /// that is there is taken.
    async fn unless<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            match self.stopped.as_mut().map(|stopped| stopped.as_mut().poll(cx)) {
                Some(Poll::Pending) => Poll::Pending,
                Some(Poll::Ready(())) | None => {
                    self.stopped = None;
                    Poll::Ready(None)
                }
            }
        })
        .await
    }
}

/// A connection's timeout for its exchanges, as one timer for the connection's life: armed at
/// the first request's deadline, and moved to the current request's deadline only when it fires
/// before it (a timer armed and cleared for every request was about 2% of the generator's CPU).
/// Deadlines only grow, so the timer is never late.
#[derive(Default)]
struct Watchdog {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The work did not finish by its deadline.
struct Elapsed;

impl Watchdog {
    async fn limit<T>(&mut self, deadline: Instant, work: impl Future<Output = T>) -> Result<T, Elapsed> {
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            while timer.as_mut().poll(cx).is_ready() {
                if Instant::now() >= deadline {
                    return Poll::Ready(Err(Elapsed));
                }
                timer.as_mut().reset(deadline.into());
            }
            Poll::Pending
        })
        .await
    }
}

/// A target that cannot be reached at all, or whose certificate is not trusted, is a failed run
/// (exit 1), not a missed SLO.
async fn check_reachable(target: &Target) -> Result<(), String> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(target.addr))
        .await
        .map_err(|_| format!("cannot reach {}: no answer within 5s", target.url))?
        .map_err(|e| format!("cannot reach {} ({}): {e}", target.url, target.addr))?;
    if let Some(tls) = &target.tls {
        let host = target.host.to_str().unwrap_or_default().to_owned();
        tokio::time::timeout(Duration::from_secs(5), tls.handshake(tcp))
            .await
            .map_err(|_| format!("TLS handshake with {host}: no answer within 5s"))?
            .map_err(|e| tls::explain(&host, &e))?;
    }
    Ok(())
}

/// Each request, written once: path under the target's base, host, API key.
fn prepare(plan: &RunPlan) -> Result<Arc<[Prepared]>, String> {
    let prepared: Vec<Prepared> = plan
        .requests
        .iter()
        .map(|r| {
            let path = format!("{}{}", plan.target.base_path, r.path);
            let uri = path.parse::<http::Uri>().map_err(|err| format!("bad path {}: {err}", r.path))?;
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            Prepared::new(r, path, &plan.target.host, plan.api_key.as_deref())
        })
        .collect::<Result<_, String>>()?;
    Ok(prepared.into())
}

/// Says how many users are due, at each moment the profile's count changes, until the deadline.
fn users_due(
    profile: Profile,
    start: Instant,
    deadline: Instant,
    mut stop: StopWaiter,
) -> tokio::sync::watch::Receiver<u32> {
    let (due_tx, due) = tokio::sync::watch::channel(profile.users_at(0.0));
    tokio::spawn(async move {
        loop {
            let t = start.elapsed().as_secs_f64();
            due_tx.send_if_modified(|n| std::mem::replace(n, profile.users_at(t)) != *n);
            let next = start + Duration::from_secs_f64(profile.next_users_change(t));
            if next >= deadline || stop.unless(tokio::time::sleep_until(next.into())).await.is_none() {
                break;
            }
        }
    });
    due
}

/// What is active now (users of the closed model, requests in flight of the open one) and the
/// most there were since the last look: a second's figure is its peak, so an open-model second
/// whose requests all finished between two looks still shows them.
#[derive(Debug, Default)]
struct Active {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Active {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// The most active since the last call; starts the next count from what is active now.
    fn take_peak(&self) -> u64 {
        let now = self.now();
        self.peak.swap(now, Ordering::Relaxed).max(now)
    }
}

/// What every sender of a run shares.
struct Crew<'a> {
    tx: &'a mpsc::UnboundedSender<Vec<Sample>>,
    prepared: &'a Arc<[Prepared]>,
    active: &'a Arc<Active>,
    plan: &'a RunPlan,
    stop: &'a Stop,
    start: Instant,
    deadline: Instant,
}

fn weights(plan: &RunPlan) -> Vec<u32> {
    plan.requests.iter().map(|r| r.weight).collect()
}

/// The open model: `connections` senders share the arrivals, each sending at its arrivals'
/// intended times.
fn spawn_open(crew: &Crew<'_>, profile: Profile, connections: u32) {
    let total = profile.total_arrivals();
    let connections = u64::from(connections.max(1));
    let profile = Arc::new(profile);
    for k in 0..connections.min(total.max(1)) {
        let (tx, prepared, active, weights) =
            (crew.tx.clone(), Arc::clone(crew.prepared), Arc::clone(crew.active), weights(crew.plan));
        let (target, timeout) = (crew.plan.target.clone(), crew.plan.timeout);
        let (mut stop, profile) = (crew.stop.waiter(), Arc::clone(&profile));
        let (start, deadline) = (crew.start, crew.deadline);
        tokio::spawn(async move {
            let mut picker = Picker::new(&weights, k + 1);
            let mut conn = Connection::new(&target);
            let mut batch = Batcher::new(tx);
            let mut slot = k;
            while slot < total {
                let Some(due) = profile.arrival_time(slot) else { break };
                let intended = start + Duration::from_secs_f64(due);
                if intended >= deadline || stop.unless(tokio::time::sleep_until(intended.into())).await.is_none() {
                    break;
                }
                let i = picker.pick();
                active.enter();
                let result = stop.unless(conn.send(&prepared[i], timeout)).await;
                active.leave();
                let Some(result) = result else { break };
                // From the intended send time: queueing behind a stalled server counts.
                batch.push(Sample::of(i, intended, result, conn.opened_us));
                slot += connections;
            }
        });
    }
}

/// Runs the plan and returns what it measured. `progress` prints the live view; `guard` (with
/// `--abort-on-fail`) stops the run once an SLO can no longer be met.
pub async fn run(plan: RunPlan, progress: Progress, stop: Stop, guard: Option<Guard>) -> Result<RunStats, String> {
    check_reachable(&plan.target).await?;
    let prepared = prepare(&plan)?;
    let names: Vec<String> = plan.requests.iter().map(|r| r.name.clone()).collect();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<Sample>>();
    let active = Arc::new(Active::default());
    let start = Instant::now();
    let duration = plan.model.profile().duration();
    let deadline = start + duration;

    match plan.model.clone() {
        Model::Closed { profile, think_time } => {
            let due = users_due(profile.clone(), start, deadline, stop.waiter());
            let pool = profile.peak().ceil() as u32;
            for user in 0..pool {
                let (tx, prepared, active, weights) =
                    (tx.clone(), Arc::clone(&prepared), Arc::clone(&active), weights(&plan));
                let (target, timeout) = (plan.target.clone(), plan.timeout);
                let (mut stop, mut due) = (stop.waiter(), due.clone());
                tokio::spawn(async move {
                    let mut picker = Picker::new(&weights, u64::from(user) + 1);
                    let mut conn = Connection::new(&target);
                    let mut batch = Batcher::new(tx);
                    loop {
                        // Wait until the profile wants this user.
                        let wanted = async { due.wait_for(|n| *n > user).await.is_ok() };
                        let until_deadline = tokio::time::timeout_at(deadline.into(), wanted);
                        if !matches!(stop.unless(until_deadline).await, Some(Ok(true))) {
                            break;
                        }
                        active.enter();
                        while Instant::now() < deadline && !stop.requested() && *due.borrow() > user {
                            let i = picker.pick();
                            let sent = Instant::now();
                            // A request cut off by a stop is not counted: it has no answer.
                            let Some(result) = stop.unless(conn.send(&prepared[i], timeout)).await else { break };
                            batch.push(Sample::of(i, sent, result, conn.opened_us));
                            if let Some((lo, hi)) = prepared[i].think_time.or(think_time) {
                                let pause = Duration::from_secs_f64(picker.between(lo.as_secs_f64(), hi.as_secs_f64()));
                                let until = (Instant::now() + pause).min(deadline);
                                if stop.unless(tokio::time::sleep_until(until.into())).await.is_none() {
                                    break;
                                }
                            }
                        }
                        active.leave();
                        if Instant::now() >= deadline || stop.requested() {
                            break;
                        }
                    }
                });
            }
        }
        Model::Open { profile, connections } => {
            let crew =
                Crew { tx: &tx, prepared: &prepared, active: &active, plan: &plan, stop: &stop, start, deadline };
            spawn_open(&crew, profile, connections);
        }
    }
    drop(tx);
    let mut stats = RunStats::new(&names, plan.target.tls.is_some());
    stats.plan(plan.model.profile());
    let watch = Watch { start, duration, active, progress, guard, stop };
    Ok(collect(rx, stats, watch).await)
}

/// What the collector looks after besides the samples.
struct Watch {
    start: Instant,
    duration: Duration,
    active: Arc<Active>,
    progress: Progress,
    guard: Option<Guard>,
    stop: Stop,
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Vec<Sample>>, mut stats: RunStats, w: Watch) -> RunStats {
    let Watch { start, duration, active, mut progress, guard, stop } = w;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(samples) => {
                    for s in samples {
                        let second = s.done.duration_since(start).as_secs() as usize;
                        let failure = s.failure.map(Failure::kind);
                        stats.record(usize::from(s.endpoint), s.latency_us, failure.as_deref(), second, s.bytes);
                        if let Some(check) = s.failure.and_then(Failure::check) {
                            stats.record_check(usize::from(s.endpoint), check);
                        }
                        if s.setup_us > 0 {
                            stats.connections.record(s.setup_us);
                        }
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                let second = start.elapsed().as_secs() as usize;
                stats.set_users(second.saturating_sub(1), active.take_peak());
                progress.tick(&stats, start.elapsed(), active.now());
                // Judged on the seconds that are complete.
                if let Some(why) = guard.as_ref().and_then(|g| g.verdict(&stats, second)) {
                    stop.request(StopReason::Aborted(why));
                }
            }
        }
    }
    stats.duration_seconds = start.elapsed().as_secs_f64().min(duration.as_secs_f64()).max(f64::MIN_POSITIVE);
    // The last second ends with the run, usually before its tick.
    stats.set_users((stats.duration_seconds.ceil() as usize).saturating_sub(1), active.take_peak());
    progress.finish();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_waiter_serves_many_races_and_cuts_the_one_running_when_the_stop_comes() {
        let stop = Stop::default();
        let mut waiter = stop.waiter();
        for i in 0..3 {
            assert_eq!(waiter.unless(async { i }).await, Some(i), "work that finishes is taken");
            assert_eq!(waiter.unless(tokio::time::sleep(Duration::from_millis(5))).await, Some(()));
        }
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopper.request(StopReason::Interrupted);
        });
        let cut = tokio::time::timeout(Duration::from_secs(5), waiter.unless(std::future::pending::<()>())).await;
        assert_eq!(cut, Ok(None), "a stop ends the race at once");
        assert!(waiter.requested());
        assert_eq!(waiter.unless(std::future::pending::<()>()).await, None, "and every race after it");
        assert_eq!(stop.reason(), Some(StopReason::Interrupted));
    }

    #[tokio::test]
    async fn the_watchdog_cuts_each_request_at_its_own_deadline() {
        let mut watchdog = Watchdog::default();
        let limit = Duration::from_millis(100);
        // Longer together than the limit: the timer armed for the first has to move on.
        for _ in 0..4 {
            let quick = watchdog.limit(Instant::now() + limit, tokio::time::sleep(Duration::from_millis(40))).await;
            assert!(quick.is_ok(), "a request within its limit is not cut");
        }
        let began = Instant::now();
        let stalled = watchdog.limit(began + limit, std::future::pending::<()>()).await;
        let waited = began.elapsed();
        assert!(stalled.is_err());
        assert!(waited >= limit && waited < Duration::from_secs(2), "cut after {waited:?}");
    }
}
