//! `loadtest compare BASE.json NEW.json`: two runs side by side, per endpoint and overall (p50,
//! p95, p99, max, throughput, error share), and a verdict against thresholds that counts a
//! difference as a regression only when it passes the threshold *and* is not noise. With
//! thousands of samples every difference is "significant" in the loose sense, so noise is
//! defined here: a percentile regresses when the new run's 95% confidence interval of it lies
//! wholly above the base run's (distribution-free intervals from order statistics, read off each
//! run's HDR histogram); the error share when a one-sided test says so at 95% (Fisher's exact test
//! while failures are few, the two-proportion z-test beyond). Throughput
//! is compared as measured (an open model's rate is the run's own choice).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::json::{EndpointDoc, ReportDoc};
use crate::scenario::MAX_REQUESTS;
use crate::stats::{MAX_COUNT, decode_histogram};

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_964;

/// What counts as a regression: a relative rise of a percentile, a relative fall of throughput,
/// a rise of the error share in percentage points. None: not judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub throughput_drop: Option<f64>,
    pub error_points: Option<f64>,
}

/// One figure of one endpoint in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub metric: &'static str,
    pub base: f64,
    pub new: f64,
    /// (new − base) / base, in percent (None when base is 0).
    pub change_percent: Option<f64>,
    /// The 95% intervals of a percentile in both runs, in ms (latencies only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_interval: Option<(f64, f64)>,
    /// The difference is larger than chance explains (latency and error share only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beyond_noise: Option<bool>,
    /// The threshold it was judged against (None: shown, not judged).
    pub threshold: Option<f64>,
    pub regressed: bool,
}

/// One endpoint (or the total) in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointComparison {
    pub name: String,
    pub figures: Vec<Figure>,
}

/// `--json`'s document.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub format: &'static str,
    pub base: String,
    pub new: String,
    pub endpoints: Vec<EndpointComparison>,
    /// Endpoints only one of the runs has.
    pub unmatched: Vec<String>,
    pub regressed: bool,
    /// The whole run's latency (ms) at each of `CURVE_PERCENTILES`: (base, new).
    pub curve: Vec<(f64, f64)>,
}

/// The percentiles the comparison's chart draws.
pub const CURVE_PERCENTILES: &[f64] = &[0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0];

/// Larger than any `--json` result of a run (a second of history is about 1 KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// Reads both files and compares them; the caller prints and gates.
pub fn compare_files(base: &Path, new: &Path, t: &Thresholds) -> Result<Comparison, String> {
    let (b, n) = (read_document(base)?, read_document(new)?);
    compare(&b, &n, t, (base, new))
}

/// Reads a `--json` result that may come from elsewhere (the base is often an earlier run's CI
/// artifact): at most `MAX_DOCUMENT_BYTES`, its counts consistent and no larger than a run's, at
/// most `MAX_REQUESTS` endpoints, each name printable and once.
pub fn read_document(path: &Path) -> Result<ReportDoc, String> {
    use std::io::Read as _;
    let not_a_result = |why: String| format!("{}: not a loadtest result ({why})", path.display());
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(not_a_result(format!("larger than {} MiB", MAX_DOCUMENT_BYTES >> 20)));
    }
    let doc: ReportDoc = serde_json::from_str(&text).map_err(|e| not_a_result(e.to_string()))?;
    if doc.format != crate::report::json::FORMAT {
        return Err(not_a_result(format!("format {:?}, not {:?}", doc.format, crate::report::json::FORMAT)));
    }
    if doc.endpoints.len() > MAX_REQUESTS {
        return Err(not_a_result(format!(
            "{} endpoints, more than a run has (at most {MAX_REQUESTS})",
            doc.endpoints.len()
        )));
    }
    for e in doc.endpoints.iter().chain([&doc.total]) {
        if e.requests > MAX_COUNT {
            return Err(not_a_result(format!("{} requests, more than a run makes (at most {MAX_COUNT})", e.requests)));
        }
        if e.failures > e.requests {
            return Err(not_a_result(format!("{} failures of {} requests", e.failures, e.requests)));
        }
        if e.name.chars().any(char::is_control) || e.name.len() > 1024 {
            return Err(not_a_result(format!("an endpoint's name is not a line of text: {:?}", e.name.escape_debug())));
        }
    }
    for (i, e) in doc.endpoints.iter().enumerate() {
        if doc.endpoints[..i].iter().any(|earlier| earlier.name == e.name) {
            return Err(not_a_result(format!("the endpoint {:?} twice", e.name)));
        }
    }
    Ok(doc)
}

/// The comparison of two runs' documents.
pub fn compare(base: &ReportDoc, new: &ReportDoc, t: &Thresholds, files: (&Path, &Path)) -> Result<Comparison, String> {
    let mut endpoints = Vec::new();
    let mut unmatched = Vec::new();
    for b in &base.endpoints {
        match new.endpoints.iter().find(|n| n.name == b.name) {
            Some(n) => endpoints.push(endpoint(b, n, base, new, t, false)?),
            None => unmatched.push(format!("{} (base only)", b.name)),
        }
    }
    unmatched.extend(
        new.endpoints
            .iter()
            .filter(|n| !base.endpoints.iter().any(|b| b.name == n.name))
            .map(|n| format!("{} (new only)", n.name)),
    );
    // The total is what the verdict rests on; endpoints show where a change comes from.
    let total = endpoint(&base.total, &new.total, base, new, t, true)?;
    let (hb, hn) = (decode_histogram(&base.total.histogram)?, decode_histogram(&new.total.histogram)?);
    let curve = CURVE_PERCENTILES.iter().map(|p| (ms(&hb, p / 100.0), ms(&hn, p / 100.0))).collect();
    let regressed = total.figures.iter().any(|f| f.regressed);
    endpoints.insert(0, total);
    Ok(Comparison {
        format: "konnichiwa-loadtest-compare/1",
        base: files.0.display().to_string(),
        new: files.1.display().to_string(),
        endpoints,
        unmatched,
        regressed,
        curve,
    })
}

fn endpoint(
    b: &EndpointDoc,
    n: &EndpointDoc,
    base: &ReportDoc,
    new: &ReportDoc,
    t: &Thresholds,
    judged: bool,
) -> Result<EndpointComparison, String> {
    let (hb, hn) = (decode_histogram(&b.histogram)?, decode_histogram(&n.histogram)?);
    let judge = |threshold: Option<f64>| threshold.filter(|_| judged);
    let mut figures = Vec::new();
    for (metric, q, threshold) in [("p50", 0.50, t.p50), ("p95", 0.95, t.p95), ("p99", 0.99, t.p99)] {
        let (bi, ni) = (interval(&hb, q), interval(&hn, q));
        let (bv, nv) = (ms(&hb, q), ms(&hn, q));
        let beyond = matches!((bi, ni), (Some((_, b_hi)), Some((n_lo, _))) if n_lo > b_hi);
        let change = change_percent(bv, nv);
        let threshold = judge(threshold);
        let regressed = threshold.is_some_and(|th| change.is_some_and(|c| c > th) && beyond);
        figures.push(Figure {
            metric,
            base: bv,
            new: nv,
            change_percent: change,
            base_interval: bi,
            new_interval: ni,
            beyond_noise: Some(beyond),
            threshold,
            regressed,
        });
    }
    let max = |h: &Histogram<u64>| if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 };
    figures.push(plain("max", max(&hb), max(&hn)));
    let (brps, nrps) = (rate(b, base), rate(n, new));
    let drop = change_percent(brps, nrps).map(|c| -c);
    let threshold = judge(t.throughput_drop);
    figures.push(Figure {
        threshold,
        regressed: threshold.is_some_and(|th| drop.is_some_and(|d| d > th)),
        ..plain("req/s", brps, nrps)
    });
    let (be, ne) = (share(b), share(n));
    let beyond = proportions_differ(b.failures, b.requests, n.failures, n.requests);
    let threshold = judge(t.error_points);
    figures.push(Figure {
        beyond_noise: Some(beyond),
        threshold,
        regressed: threshold.is_some_and(|th| ne - be > th && beyond),
        ..plain("errors %", be, ne)
    });
    Ok(EndpointComparison { name: b.name.clone(), figures })
}

fn plain(metric: &'static str, base: f64, new: f64) -> Figure {
    Figure {
        metric,
        base,
        new,
        change_percent: change_percent(base, new),
        base_interval: None,
        new_interval: None,
        beyond_noise: None,
        threshold: None,
        regressed: false,
    }
}

fn change_percent(base: f64, new: f64) -> Option<f64> {
    (base > 0.0).then(|| (new - base) * 100.0 / base)
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 }
}

/// Requests a second over the run's duration.
fn rate(e: &EndpointDoc, doc: &ReportDoc) -> f64 {
    if doc.duration_seconds > 0.0 { e.requests as f64 / doc.duration_seconds } else { 0.0 }
}

fn share(e: &EndpointDoc) -> f64 {
    if e.requests == 0 { 0.0 } else { e.failures as f64 * 100.0 / e.requests as f64 }
}

/// The distribution-free 95% interval of the `q` quantile, in ms: the values at the order
/// statistics n·q ± z·√(n·q·(1−q)) (the binomial's normal approximation; None under 20 samples,
/// where it does not hold).
fn interval(h: &Histogram<u64>, q: f64) -> Option<(f64, f64)> {
    let n = h.len() as f64;
    if n < 20.0 {
        return None;
    }
    let spread = Z95 * (n * q * (1.0 - q)).sqrt();
    let rank = |r: f64| (r.clamp(1.0, n) / n).clamp(0.0, 1.0);
    let lo = h.value_at_quantile(rank((n * q - spread).floor())) as f64 / 1000.0;
    let hi = h.value_at_quantile(rank((n * q + spread).ceil())) as f64 / 1000.0;
    Some((lo, hi))
}

/// Whether the second share of failures is higher than the first beyond chance, one-sided at
/// 95%: Fisher's exact test while either run expects few failures (under `FEW` under the null
/// hypothesis, where the normal approximation calls small counts significant too eagerly), the
/// two-proportion z-test (pooled standard error) beyond.
fn proportions_differ(f1: u64, n1: u64, f2: u64, n2: u64) -> bool {
    const FEW: f64 = 10.0;
    if n1 == 0 || n2 == 0 || f2 as f64 / n2 as f64 <= f1 as f64 / n1 as f64 {
        return false;
    }
    // Widened: `compare` takes documents whose counts read_document has not capped.
    let failures = f1 as f64 + f2 as f64;
    let total = n1 as f64 + n2 as f64;
    if failures * (n1.min(n2) as f64) / total < FEW {
        return fisher_upper_tail(f1.saturating_add(f2), n1, n2, f2) < 0.05;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (p1, p2) = (f1 as f64 / n1, f2 as f64 / n2);
    let pooled = failures / total;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    (p2 - p1) / se > 1.644_854
}

/// P(X ≥ `at_least`) for X, the failures that fall in the second run when `failures` are spread
/// at random over `n1` + `n2` requests (hypergeometric): the first term from log-gamma, each next
/// one from the one before it, until the terms no longer count. `at_least` lies above the mean
/// (the caller asks only when the second run's share is higher), where the terms only fall, so
/// the sum takes a few dozen terms whatever the counts.
fn fisher_upper_tail(failures: u64, n1: u64, n2: u64, at_least: u64) -> f64 {
    let (k_min, k_max) = (failures.saturating_sub(n1), failures.min(n2));
    let (n1, n2, f) = (n1 as f64, n2 as f64, failures as f64);
    let start = at_least.max(k_min);
    if start > k_max {
        return 0.0;
    }
    // ln P(X = k) = ln C(n2, k) + ln C(n1, failures − k) − ln C(n1 + n2, failures).
    let k = start as f64;
    let mut ln_p = ln_choose(n2, k) + ln_choose(n1, f - k) - ln_choose(n1 + n2, f);
    let mut tail = 0.0;
    for k in start..=k_max {
        let p = ln_p.exp();
        tail += p;
        if p <= tail * 1e-17 || k == k_max {
            break;
        }
        // P(k + 1) / P(k) = (n2 − k)(failures − k) / ((k + 1)(n1 − failures + k + 1)).
        let k = k as f64;
        ln_p += ((n2 - k) * (f - k)).ln() - ((k + 1.0) * (n1 - f + k + 1.0)).ln();
    }
    tail.min(1.0)
}

/// ln C(n, k) for 0 ≤ k ≤ n.
fn ln_choose(n: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// ln Γ(x) for x ≥ 1: Stirling's series, its error under 2e-15 from x = 20 on, and the recurrence
/// Γ(x + 1) = x Γ(x) below.
fn ln_gamma(x: f64) -> f64 {
    if x < 20.0 {
        return ln_gamma(x + 1.0) - x.ln();
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
}

/// The comparison as a table, the judged figures marked, and the verdict.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Comparing {} (base) with {} (new)", c.base, c.new);
    for e in &c.endpoints {
        let _ = writeln!(out, "\n{}", if e.name.is_empty() { "Aggregated" } else { &e.name });
        let _ = writeln!(out, "  {:<9} {:>12} {:>12} {:>9}  verdict", "", "base", "new", "change");
        for f in &e.figures {
            let change = f.change_percent.map_or_else(|| "-".to_owned(), |p| format!("{p:+.1}%"));
            let verdict = match (f.threshold, f.regressed, f.beyond_noise) {
                (Some(_), true, _) => "REGRESSED".to_owned(),
                (Some(th), false, Some(false)) if f.change_percent.is_some_and(|p| p.abs() > th) => {
                    "within noise".to_owned()
                }
                (Some(th), false, _) => {
                    format!("ok (limit {th}{})", if f.metric == "errors %" { " points" } else { "%" })
                }
                (None, _, _) => String::new(),
            };
            let _ = writeln!(out, "  {:<9} {:>12.2} {:>12.2} {:>9}  {verdict}", f.metric, f.base, f.new, change);
        }
    }
    if !c.unmatched.is_empty() {
        let _ = writeln!(out, "\nIn one run only: {}", c.unmatched.join(", "));
    }
    let _ = writeln!(
        out,
        "\n{}",
        if c.regressed {
            "REGRESSED: a judged figure of the whole run passed its limit beyond noise (exit 3)"
        } else {
            "No regression beyond the limits and the noise (exit 0)"
        }
    );
    out
}

/// `compare`'s command: prints, writes `--json`, and returns the exit code.
pub fn run(
    base: &Path,
    new: &Path,
    t: &Thresholds,
    json: Option<&PathBuf>,
    html: Option<&PathBuf>,
) -> Result<bool, String> {
    let c = compare_files(base, new, t)?;
    print!("{}", render(&c));
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if let Some(path) = json {
        write(path, serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?)?;
    }
    if let Some(path) = html {
        write(path, crate::report::html::render_comparison(&c))?;
    }
    Ok(c.regressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    /// `n` samples spread evenly over `from_ms`..`to_ms`.
    fn spread(n: u64, from_ms: f64, to_ms: f64) -> Histogram<u64> {
        let mut h = new_histogram();
        for i in 0..n {
            let ms = from_ms + (to_ms - from_ms) * i as f64 / n as f64;
            h.record((ms * 1000.0) as u64).expect("record");
        }
        h
    }

    #[test]
    fn a_percentiles_interval_narrows_with_samples_and_holds_its_value() {
        let small = interval(&spread(100, 10.0, 30.0), 0.95).expect("interval");
        let large = interval(&spread(100_000, 10.0, 30.0), 0.95).expect("interval");
        assert!(small.0 <= 29.0 && 29.0 <= small.1, "{small:?}");
        assert!(large.0 <= 29.0 && 29.0 <= large.1, "{large:?}");
        assert!(large.1 - large.0 < (small.1 - small.0) / 5.0, "{small:?} {large:?}");
        assert_eq!(interval(&spread(10, 10.0, 30.0), 0.95), None, "too few samples to say");
    }

    #[test]
    fn only_a_shift_beyond_both_intervals_is_beyond_noise() {
        // 5% slower with 100 samples each: within noise.
        let (b, n) = (interval(&spread(100, 10.0, 30.0), 0.95), interval(&spread(100, 10.5, 31.5), 0.95));
        let (b, n) = (b.expect("b"), n.expect("n"));
        assert!(n.0 <= b.1, "overlap expected: {b:?} {n:?}");
        // Twice as slow with 10,000 each: beyond.
        let (b, n) = (interval(&spread(10_000, 10.0, 30.0), 0.95), interval(&spread(10_000, 20.0, 60.0), 0.95));
        assert!(n.expect("n").0 > b.expect("b").1);
    }

    #[test]
    fn an_error_share_rises_beyond_chance_only_with_enough_requests() {
        assert!(!proportions_differ(1, 100, 2, 100), "1% → 2% of 100: chance");
        assert!(proportions_differ(100, 100_000, 300, 100_000), "0.1% → 0.3% of 100,000: not chance");
        assert!(!proportions_differ(300, 100_000, 100, 100_000), "a fall is no rise");
        assert!(!proportions_differ(0, 0, 5, 10));
        // A handful of failures: the z-test's normal approximation would call 0 → 3 of 100 a rise
        // (z = 1.74); Fisher's exact test puts it at p = 0.12.
        assert!(!proportions_differ(0, 100, 3, 100), "0 → 3 of 100: chance");
        assert!(proportions_differ(0, 1_000, 8, 1_000), "0 → 8 of 1,000: p < 0.01");
        assert!(!proportions_differ(2, 1_000_000, 6, 1_000_000), "2 → 6 of a million: chance");
    }

    #[test]
    fn fishers_tail_matches_its_known_values() {
        // 0 of 100 against 3 of 100: P(all three in the second run) = C(100,3)/C(200,3).
        let exact = (100.0 * 99.0 * 98.0) / (200.0 * 199.0 * 198.0);
        assert!((fisher_upper_tail(3, 100, 100, 3) - exact).abs() < 1e-12);
        assert!((fisher_upper_tail(3, 100, 100, 0) - 1.0).abs() < 1e-9, "the whole distribution");
        // Symmetric runs: P(X ≥ 2) of 4 failures over 50 + 50 is a little over one half.
        let half = fisher_upper_tail(4, 50, 50, 2);
        assert!(half > 0.5 && half < 0.75, "{half}");
    }

    #[test]
    fn log_gamma_matches_factorials() {
        let mut factorial = 1.0_f64;
        for n in 1..=30_u32 {
            factorial *= f64::from(n);
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!((got - factorial.ln()).abs() < 1e-12, "ln {n}! = {got}, not {}", factorial.ln());
        }
        assert!(ln_gamma(1.0).abs() < 1e-13 && ln_gamma(2.0).abs() < 1e-13);
    }

    #[test]
    fn fishers_tail_takes_a_few_terms_whatever_the_counts() {
        // A document's counts are its own to claim: a sum over every possible k would run for
        // hours here (10^15 failures of 10^18 requests against 10 of 1,000).
        let started = std::time::Instant::now();
        let p = fisher_upper_tail(1_000_000_000_000_010, 1_000_000_000_000_000_000, 1_000, 10);
        assert!(p.is_finite() && (0.0..=1.0).contains(&p), "{p}");
        let _ = proportions_differ(1_000_000_000_000_000, 1_000_000_000_000_000_000, 10, 1_000);
        // Counts whose sums overflow u64 (read_document refuses them; compare() alone does not):
        // an answer, not a panic.
        let _ = proportions_differ(0, u64::MAX, 5, 10);
        let _ = proportions_differ(1, u64::MAX, u64::MAX, u64::MAX);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        // Far in the tail the sum stops as soon as the terms are negligible, and agrees with the
        // exact value: 0 of 10,000 against 30 of 10,000.
        let exact: f64 = (0..30).map(|i| (10_000.0 - f64::from(i)) / (20_000.0 - f64::from(i))).product();
        let got = fisher_upper_tail(30, 10_000, 10_000, 30);
        assert!(((got - exact) / exact).abs() < 1e-9, "{got} vs {exact}");
    }
}
