//! Results: per-endpoint HDR latency histograms (microseconds), request and failure counts by kind
//! (and the failed checks by reason),
//! a per-second history, and the connections opened with their setup times (TCP connect plus
//! TLS handshake) — all mergeable exactly, so runs from several machines add up. The planned load
//! rides along: each second's planned arrivals (or users) and the stages, whose figures come
//! from the seconds that start within them.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::stages::{Profile, Unit};

/// Latencies up to 10 minutes, 3 significant digits.
const MAX_LATENCY_US: u64 = 600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds within hdrhistogram's limits")
}

/// Why an answer failed its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    Status,
    Body,
}

/// Answers that failed their check, by reason (each is also among the failures, by kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckFailures {
    /// A status the check does not pass (by default: 400 or more).
    pub status: u64,
    /// A body without the text the check looks for.
    pub body: u64,
}

impl CheckFailures {
    pub fn count(&self) -> u64 {
        self.status + self.body
    }

    fn merge(&mut self, other: &CheckFailures) {
        self.status += other.status;
        self.body += other.body;
    }
}

/// Counts and latencies of one endpoint (or of all, for the total).
#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub requests: u64,
    pub failures: BTreeMap<String, u64>,
    pub check_failures: CheckFailures,
    pub latency: Histogram<u64>,
    /// Bytes of the response bodies.
    pub content_bytes: u64,
}

impl Default for EndpointStats {
    fn default() -> Self {
        Self {
            requests: 0,
            failures: BTreeMap::new(),
            check_failures: CheckFailures::default(),
            latency: new_histogram(),
            content_bytes: 0,
        }
    }
}

impl EndpointStats {
    pub fn record(&mut self, latency_us: u64, failure: Option<&str>) {
        self.requests += 1;
        let _ = self.latency.record(latency_us.clamp(1, MAX_LATENCY_US));
        if let Some(kind) = failure {
            *self.failures.entry(kind.to_owned()).or_default() += 1;
        }
    }

    pub fn failure_count(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Exact merge: counts add, histograms add.
    pub fn merge(&mut self, other: &EndpointStats) {
        self.requests += other.requests;
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        self.check_failures.merge(&other.check_failures);
        let _ = self.latency.add(&other.latency);
        self.content_bytes += other.content_bytes;
    }

    /// The mean body size in bytes (0 when empty).
    pub fn mean_content_bytes(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.content_bytes as f64 / self.requests as f64 }
    }

    pub fn min_ms(&self) -> f64 {
        if self.latency.is_empty() { 0.0 } else { self.latency.min() as f64 / 1000.0 }
    }

    /// A latency percentile in milliseconds (0 when empty).
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() { 0.0 } else { self.latency.value_at_quantile(q / 100.0) as f64 / 1000.0 }
    }

    pub fn max_ms(&self) -> f64 {
        if self.latency.is_empty() { 0.0 } else { self.latency.max() as f64 / 1000.0 }
    }

    pub fn mean_ms(&self) -> f64 {
        if self.latency.is_empty() { 0.0 } else { self.latency.mean() / 1000.0 }
    }

    pub fn error_percent(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.failure_count() as f64 * 100.0 / self.requests as f64 }
    }
}

/// One second of the run.
#[derive(Debug, Clone)]
pub struct Second {
    pub requests: u64,
    pub failures: u64,
    pub users: u64,
    /// What the plan asked of this second: arrivals (open model) or users (closed).
    pub planned: f64,
    pub latency: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Self { requests: 0, failures: 0, users: 0, planned: 0.0, latency: new_histogram() }
    }
}

impl Second {
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() { 0.0 } else { self.latency.value_at_quantile(q / 100.0) as f64 / 1000.0 }
    }
}

/// The connections a run opened: how many, and how long each took to set up.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Over TLS (the setup time includes the handshake).
    pub tls: bool,
    pub opened: u64,
    /// Setup times in microseconds.
    pub setup: Histogram<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Self { tls: false, opened: 0, setup: new_histogram() }
    }
}

impl Connections {
    pub fn record(&mut self, setup_us: u64) {
        self.opened += 1;
        let _ = self.setup.record(setup_us.clamp(1, MAX_LATENCY_US));
    }

    pub fn merge(&mut self, other: &Connections) {
        self.tls |= other.tls;
        self.opened += other.opened;
        let _ = self.setup.add(&other.setup);
    }

    /// A setup-time percentile in milliseconds (0 when none was opened).
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.setup.is_empty() { 0.0 } else { self.setup.value_at_quantile(q / 100.0) as f64 / 1000.0 }
    }
}

/// A stage of the plan: from `start` to `end` seconds, its target ramping `from` → `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub name: String,
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
    pub unit: Unit,
}

impl StagePlan {
    /// The whole seconds measured for the stage: those that start within it, up to `duration`.
    pub fn seconds(&self, duration: f64) -> std::ops::Range<usize> {
        let first = (self.start - 1e-9).ceil().max(0.0) as usize;
        let last = (self.end.min(duration) - 1e-9).ceil().max(0.0) as usize;
        first..last.max(first)
    }
}

/// What a stage measured: its requests as one endpoint, and over how many seconds.
#[derive(Debug, Clone)]
pub struct StageStats {
    pub stats: EndpointStats,
    pub seconds: f64,
    /// Arrivals the plan asked of those seconds (open model).
    pub planned: f64,
}

impl StageStats {
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 { self.stats.requests as f64 / self.seconds } else { 0.0 }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Endpoint name -> stats, in mix order.
    pub endpoints: Vec<(String, EndpointStats)>,
    pub history: Vec<Second>,
    pub connections: Connections,
    pub duration_seconds: f64,
    /// The plan's stages (one for a constant rate; a ramp and a hold for spawned users).
    pub stages: Vec<StagePlan>,
}

impl RunStats {
    pub fn new(names: &[String], tls: bool) -> Self {
        Self {
            endpoints: names.iter().map(|n| (n.clone(), EndpointStats::default())).collect(),
            connections: Connections { tls, ..Connections::default() },
            ..Self::default()
        }
    }

    /// Records one answered (or failed) request finished `second` seconds into the run, with
    /// `bytes` of body.
    pub fn record(&mut self, endpoint: usize, latency_us: u64, failure: Option<&str>, second: usize, bytes: u64) {
        if let Some((_, e)) = self.endpoints.get_mut(endpoint) {
            e.record(latency_us, failure);
            e.content_bytes += bytes;
        }
        if self.history.len() <= second {
            self.history.resize_with(second + 1, Second::default);
        }
        let s = &mut self.history[second];
        s.requests += 1;
        s.failures += u64::from(failure.is_some());
        let _ = s.latency.record(latency_us.clamp(1, MAX_LATENCY_US));
    }

    /// Counts a failed check of `endpoint` (its failure is recorded by `record`).
    pub fn record_check(&mut self, endpoint: usize, check: CheckFailure) {
        if let Some((_, e)) = self.endpoints.get_mut(endpoint) {
            match check {
                CheckFailure::Status => e.check_failures.status += 1,
                CheckFailure::Body => e.check_failures.body += 1,
            }
        }
    }

    /// Notes the plan: its stages, and what each second of it asks for.
    pub fn plan(&mut self, profile: &Profile) {
        self.stages = profile
            .spans
            .iter()
            .map(|s| StagePlan {
                name: s.name.clone(),
                start: s.start,
                end: s.end,
                from: s.from,
                to: s.to,
                unit: profile.unit,
            })
            .collect();
        let seconds = (profile.duration().as_secs_f64() - 1e-9).ceil().max(0.0) as usize;
        if self.history.len() < seconds {
            self.history.resize_with(seconds, Second::default);
        }
        for (s, second) in self.history.iter_mut().enumerate().take(seconds) {
            second.planned = profile.planned_in_second(s);
        }
    }

    /// The stage named `name` as measured (None: no such stage).
    pub fn stage(&self, name: &str) -> Option<StageStats> {
        let plan = self.stages.iter().find(|s| s.name == name)?;
        let range = plan.seconds(self.duration_seconds);
        let mut stats = EndpointStats::default();
        let mut planned = 0.0;
        for second in self.history.get(range.clone()).unwrap_or_default() {
            stats.requests += second.requests;
            if second.failures > 0 {
                *stats.failures.entry("failed".into()).or_default() += second.failures;
            }
            let _ = stats.latency.add(&second.latency);
            planned += second.planned;
        }
        let seconds = (range.end as f64).min(self.duration_seconds) - range.start as f64;
        Some(StageStats { stats, seconds: seconds.max(0.0), planned })
    }

    pub fn set_users(&mut self, second: usize, users: u64) {
        if self.history.len() <= second {
            self.history.resize_with(second + 1, Second::default);
        }
        self.history[second].users = self.history[second].users.max(users);
    }

    /// All endpoints together.
    pub fn total(&self) -> EndpointStats {
        let mut t = EndpointStats::default();
        for (_, e) in &self.endpoints {
            t.merge(e);
        }
        t
    }

    pub fn rps(&self) -> f64 {
        if self.duration_seconds > 0.0 { self.total().requests as f64 / self.duration_seconds } else { 0.0 }
    }

    /// What the plan asked of its first `seconds` (a part of a second counts in proportion): an
    /// interrupted run was offered that, not the whole plan.
    pub fn planned_until(&self, seconds: f64) -> f64 {
        planned_until(self.history.iter().map(|s| s.planned), seconds)
    }

    /// Merges runs made at the same time from several machines: counts and histograms add per
    /// endpoint and per second; the duration is the longest.
    pub fn merge(&mut self, other: &RunStats) {
        for (name, stats) in &other.endpoints {
            match self.endpoints.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => mine.merge(stats),
                None => self.endpoints.push((name.clone(), stats.clone())),
            }
        }
        if self.history.len() < other.history.len() {
            self.history.resize_with(other.history.len(), Second::default);
        }
        for (mine, theirs) in self.history.iter_mut().zip(&other.history) {
            mine.requests += theirs.requests;
            mine.failures += theirs.failures;
            mine.users += theirs.users;
            mine.planned += theirs.planned;
            let _ = mine.latency.add(&theirs.latency);
        }
        // The same stages, each run with its share of the targets: the targets add up.
        for theirs in &other.stages {
            match self.stages.iter_mut().find(|s| s.name == theirs.name) {
                Some(mine) => {
                    mine.from += theirs.from;
                    mine.to += theirs.to;
                }
                None => self.stages.push(theirs.clone()),
            }
        }
        self.connections.merge(&other.connections);
        self.duration_seconds = self.duration_seconds.max(other.duration_seconds);
    }
}

/// A histogram as base64 of the compressed HdrHistogram V2 encoding (cookie 0x1c849314): the
/// form HdrHistogram's log files, its Java, Python and JavaScript ports and its plotter read.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// More samples or requests than any run makes (a million a second for eleven days). A document
/// may come from elsewhere: a count beyond this is refused where it is read, so that no sum of
/// counts (hdrhistogram's own included) can overflow.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// The V2 encoding's cookies: plain, and deflated.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// The V2 header: cookie, payload length, normalizing offset, significant digits, lowest and
/// highest trackable values, integer-to-double ratio.
const V2_HEADER_BYTES: usize = 40;
/// More than any histogram of ours encodes to (a few tens of KiB for 600 s at 3 digits).
const MAX_ENCODED_BYTES: usize = 4 << 20;
/// The widest histogram a document may hold: ours are 1 µs..600 s at 3 significant digits.
const MAX_DIGITS: u32 = 3;
const MAX_HIGHEST_US: u64 = 1 << 36;

/// Reads either V2 encoding, compressed or not (documents written before the compressed form).
/// A document may come from elsewhere (`loadtest compare`'s base is an earlier run's artifact),
/// so the header is checked before hdrhistogram allocates what it claims: a payload longer than
/// the bytes that carry it, or bounds wider than ours, are refused instead of allocated.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("histogram is not base64: {e}"))?;
    let plain = match be_u32(&bytes, 0) {
        Some(V2_DEFLATE_COOKIE) => {
            let mut inflated = Vec::new();
            let deflated = bytes.get(8..).unwrap_or_default();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(flate2::read::ZlibDecoder::new(deflated), MAX_ENCODED_BYTES as u64 + 1),
                &mut inflated,
            )
            .map_err(|e| format!("histogram does not inflate: {e}"))?;
            if inflated.len() > MAX_ENCODED_BYTES {
                return Err(format!("histogram inflates to more than {} MiB", MAX_ENCODED_BYTES >> 20));
            }
            inflated
        }
        Some(V2_COOKIE) => bytes,
        _ => return Err("histogram is not HdrHistogram's V2 encoding".to_owned()),
    };
    check_v2_header(&plain)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    // hdrhistogram saturates its total: a sum that overflowed shows as u64::MAX, beyond the limit.
    if h.len() > MAX_COUNT {
        return Err(format!("histogram holds {} samples, more than a run makes (at most {MAX_COUNT})", h.len()));
    }
    Ok(h)
}

fn check_v2_header(plain: &[u8]) -> Result<(), String> {
    let header = |at| be_u32(plain, at).ok_or_else(|| "histogram is cut short".to_owned());
    if header(0)? != V2_COOKIE {
        return Err("histogram is not HdrHistogram's V2 encoding".to_owned());
    }
    let payload = header(4)? as usize;
    if plain.len() < V2_HEADER_BYTES || payload > plain.len() - V2_HEADER_BYTES {
        return Err("histogram is cut short".to_owned());
    }
    let highest = plain.get(24..32).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
    if header(12)? > MAX_DIGITS || highest > MAX_HIGHEST_US {
        return Err(format!(
            "histogram is wider than a loadtest run's (at most {MAX_DIGITS} significant digits, {MAX_HIGHEST_US} µs)"
        ));
    }
    Ok(())
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
}

/// The sum of per-second `planned` figures over the first `seconds`, the last one in proportion.
pub fn planned_until(planned: impl IntoIterator<Item = f64>, seconds: f64) -> f64 {
    planned.into_iter().enumerate().map(|(i, p)| p * (seconds - i as f64).clamp(0.0, 1.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution_within_hdr_precision() {
        let mut e = EndpointStats::default();
        for ms in 1..=1000u64 {
            e.record(ms * 1000, None);
        }
        for (q, expected) in [(50.0, 500.0), (90.0, 900.0), (95.0, 950.0), (99.0, 990.0)] {
            let got = e.percentile_ms(q);
            assert!((got - expected).abs() <= expected * 0.001 + 0.001, "p{q}: {got} vs {expected}");
        }
        assert!((e.max_ms() - 1000.0).abs() < 1.0);
    }

    #[test]
    fn merge_equals_one_run_over_both() {
        let names = vec!["GET /".to_owned(), "GET /health".to_owned()];
        let (mut a, mut b, mut both) =
            (RunStats::new(&names, true), RunStats::new(&names, true), RunStats::new(&names, true));
        for i in 0..500u64 {
            let fail = (i % 50 == 0).then_some("HTTP 500");
            a.record((i % 2) as usize, 1000 + i * 7, fail, (i / 100) as usize, 10);
            both.record((i % 2) as usize, 1000 + i * 7, fail, (i / 100) as usize, 10);
            b.record((i % 2) as usize, 5000 + i * 13, None, (i / 120) as usize, 20);
            both.record((i % 2) as usize, 5000 + i * 13, None, (i / 120) as usize, 20);
        }
        a.duration_seconds = 5.0;
        b.duration_seconds = 5.0;
        both.duration_seconds = 5.0;
        for us in [900, 1200, 5000] {
            a.connections.record(us);
            both.connections.record(us);
        }
        b.connections.record(2000);
        both.connections.record(2000);
        a.record_check(1, CheckFailure::Body);
        b.record_check(1, CheckFailure::Body);
        b.record_check(0, CheckFailure::Status);
        a.merge(&b);
        assert_eq!(a.endpoints[1].1.check_failures, CheckFailures { status: 0, body: 2 });
        assert_eq!(a.total().check_failures, CheckFailures { status: 1, body: 2 }, "the checks add up by reason");
        assert_eq!((a.connections.opened, &a.connections.setup), (4, &both.connections.setup));
        let (ta, tb) = (a.total(), both.total());
        assert_eq!(ta.requests, tb.requests);
        assert_eq!(ta.failures, tb.failures);
        assert_eq!(ta.latency, tb.latency);
        assert_eq!(a.history.len(), both.history.len());
        for (x, y) in a.history.iter().zip(&both.history) {
            assert_eq!((x.requests, x.failures), (y.requests, y.failures));
        }
    }

    #[test]
    fn histograms_round_trip_through_base64_in_both_encodings() {
        let mut e = EndpointStats::default();
        for v in [1, 10, 100, 12_345, 999_999] {
            e.record(v, None);
        }
        let encoded = encode_histogram(&e.latency);
        let bytes = base64::engine::general_purpose::STANDARD.decode(&encoded).expect("base64");
        assert_eq!(bytes[..4], [0x1c, 0x84, 0x93, 0x14], "the compressed V2 cookie");
        assert_eq!(decode_histogram(&encoded).expect("decodes"), e.latency);
        let mut plain = Vec::new();
        hdrhistogram::serialization::V2Serializer::new().serialize(&e.latency, &mut plain).expect("serialize");
        let old = base64::engine::general_purpose::STANDARD.encode(plain);
        assert_eq!(decode_histogram(&old).expect("the uncompressed form still reads"), e.latency);
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn a_histogram_that_claims_more_than_it_carries_is_refused_before_anything_is_allocated() {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        // A V2 header: payload length, offset 0, digits, lowest and highest value, ratio 1.0.
        let header = |payload: u32, digits: u32, high: u64| {
            let mut h = Vec::new();
            h.extend_from_slice(&V2_COOKIE.to_be_bytes());
            h.extend_from_slice(&payload.to_be_bytes());
            h.extend_from_slice(&0_u32.to_be_bytes());
            h.extend_from_slice(&digits.to_be_bytes());
            h.extend_from_slice(&1_u64.to_be_bytes());
            h.extend_from_slice(&high.to_be_bytes());
            h.extend_from_slice(&1.0_f64.to_be_bytes());
            h
        };
        let deflated = |plain: &[u8]| {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut z, plain).expect("deflate");
            let z = z.finish().expect("deflate");
            let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
            out.extend_from_slice(&u32::try_from(z.len()).expect("small").to_be_bytes());
            out.extend_from_slice(&z);
            out
        };
        // hdrhistogram would allocate the 4 GiB the header claims before reading the payload.
        let four_gib = header(u32::MAX, 3, MAX_LATENCY_US);
        for bytes in [four_gib.clone(), deflated(&four_gib)] {
            assert_eq!(decode_histogram(&b64(&bytes)).expect_err("refused"), "histogram is cut short");
        }
        // 5 digits up to u64::MAX: tens of MiB of counts for one histogram.
        let wide = header(0, 5, u64::MAX);
        assert!(decode_histogram(&b64(&wide)).expect_err("refused").contains("wider than a loadtest run's"));
        // A deflate bomb: a valid header, then 64 MiB of zeros.
        let mut bomb = header(64 << 20, 3, MAX_LATENCY_US);
        bomb.resize(bomb.len() + (64 << 20), 0);
        let bomb = deflated(&bomb);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        assert!(decode_histogram(&b64(&bomb)).expect_err("refused").contains("inflates to more than 4 MiB"));
        assert!(decode_histogram(&b64(&[0x1c, 0x84])).expect_err("refused").contains("not HdrHistogram's V2"));
        // Ours pass the same checks.
        let mut e = EndpointStats::default();
        e.record(1_000, None);
        assert_eq!(decode_histogram(&encode_histogram(&e.latency)).expect("ours"), e.latency);
    }

    #[test]
    fn a_histogram_holding_more_samples_than_a_run_makes_is_refused() {
        let with = |counts: &[u64]| {
            let mut h = new_histogram();
            for (i, n) in counts.iter().enumerate() {
                h.record_n(1_000 * (i as u64 + 1), *n).expect("record");
            }
            decode_histogram(&encode_histogram(&h))
        };
        assert_eq!(with(&[MAX_COUNT]).expect("as many as a run may make").len(), MAX_COUNT);
        let over = with(&[MAX_COUNT, 1]).expect_err("refused");
        assert!(over.contains("1000000000001 samples, more than a run makes"), "{over}");
        // Counts whose sum overflows: hdrhistogram's total saturates, and reading a quantile
        // would overflow its running sum (a panic in a debug build).
        let huge = i64::MAX as u64;
        assert!(with(&[huge, huge, huge]).expect_err("refused").contains("more than a run makes"));
    }

    #[test]
    fn an_interrupted_run_was_offered_the_seconds_it_ran_not_the_whole_plan() {
        let per_second = [50.0; 30];
        assert_eq!(planned_until(per_second, 4.0), 200.0);
        assert_eq!(planned_until(per_second, 2.5), 125.0);
        assert_eq!(planned_until(per_second, 40.0), 1500.0);
    }
}
