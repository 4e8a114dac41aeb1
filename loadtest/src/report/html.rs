//! A self-contained HTML report: the table (with the failed checks by reason), the SLO verdicts and inline SVG charts of requests/s,
//! latency percentiles and users (or, for an open model, requests in flight) over the run's whole
//! seconds, with values on both axes. No script, no external resource.

use std::fmt::Write;

use crate::report::json::ReportDoc;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart of one or more series over the run's seconds.
fn chart(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    chart_over(title, unit, "seconds", &|i| i.to_string(), series)
}

/// A line chart whose points are `x_label`'s steps, each tick named by `tick`.
fn chart_over(
    title: &str,
    unit: &str,
    x_label: &str,
    tick: &dyn Fn(usize) -> String,
    series: &[(&str, &str, Vec<f64>)],
) -> String {
    let (w, h, left, bottom, top) = (720.0, 220.0, 60.0, 30.0, 24.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(2);
    let max = series.iter().flat_map(|s| s.2.iter().copied()).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
    let x = |i: usize| left + (w - left - 10.0) * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><text x="{left}" y="16" class="title">{t}</text>"#,
        t = escape(title)
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" class="axis" text-anchor="end">{v:.1}</text>"##,
            w - 10.0,
            left - 4.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    // Five ticks on the x axis, from the first point to the last.
    let mut ticks: Vec<usize> = (0..=4).map(|k| (k * (n - 1) + 2) / 4).collect();
    ticks.dedup();
    for i in ticks {
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#bbb"/><text x="{x:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"##,
            h - bottom,
            h - bottom + 4.0,
            h - bottom + 15.0,
            escape(&tick(i)),
            x = x(i)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" class="axis" text-anchor="end">{}</text><text x="4" y="{}" class="axis">{}</text>"#,
        w - 10.0,
        h - 2.0,
        escape(x_label),
        top - 8.0,
        escape(unit)
    );
    for (i, (label, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, points.join(" "));
        // The legend's colour is an inline style: a stylesheet rule would override a fill attribute.
        let at = w - 280.0 + 90.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{at}" x2="{}" y1="12" y2="12" stroke="{colour}" stroke-width="3"/><text x="{}" y="16" style="fill: {colour}" class="legend">{}</text>"#,
            at + 14.0,
            at + 18.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `loadtest compare --html`: both runs' latency distributions on one chart (the whole run's
/// latency at each percentile), and the comparison's table.
pub fn render_comparison(c: &crate::compare::Comparison) -> String {
    let percentiles = crate::compare::CURVE_PERCENTILES;
    let base: Vec<f64> = c.curve.iter().map(|p| p.0).collect();
    let new: Vec<f64> = c.curve.iter().map(|p| p.1).collect();
    let svg = chart_over(
        "Latency by percentile, the whole run",
        "ms",
        "percentile",
        &|i| percentiles.get(i).map_or_else(String::new, |p| format!("p{p}")),
        &[("base", "#8b949e", base), ("new", "#1f6feb", new)],
    );
    let mut rows = String::new();
    for e in &c.endpoints {
        for f in &e.figures {
            let change = f.change_percent.map_or_else(|| "-".to_owned(), |p| format!("{p:+.1}%"));
            let mark = if f.regressed { r#" class="missed""# } else { "" };
            let _ = write!(
                rows,
                "<tr{mark}><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{change}</td><td>{}</td></tr>",
                escape(if e.name.is_empty() { "Aggregated" } else { &e.name }),
                f.metric,
                f.base,
                f.new,
                if f.regressed { "REGRESSED" } else { "" }
            );
        }
    }
    let verdict = if c.regressed { "REGRESSED" } else { "no regression beyond the limits and the noise" };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>loadtest compare</title><style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }} .missed {{ color: #b3261e; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 8px; text-align: right; }}
.title {{ font-weight: bold; font-size: 13px; }} .axis, .legend {{ font-size: 11px; fill: #555; }}
</style></head><body><h1>{} (base) against {} (new)</h1><p>Verdict: <strong>{verdict}</strong></p>{svg}
<table><tr><th>endpoint</th><th>figure</th><th>base</th><th>new</th><th>change</th><th></th></tr>{rows}</table></body></html>"#,
        escape(&c.base),
        escape(&c.new)
    )
}

pub fn render(doc: &ReportDoc) -> String {
    let hist = doc.whole_seconds();
    let rps: Vec<f64> = hist.iter().map(|s| s.requests as f64).collect();
    let failures: Vec<f64> = hist.iter().map(|s| s.failures as f64).collect();
    let users: Vec<f64> = hist.iter().map(|s| s.users as f64).collect();
    let (users_title, users_label) =
        if doc.is_open_model() { ("Requests in flight", "in flight") } else { ("Users", "users") };
    let p50: Vec<f64> = hist.iter().map(|s| s.p50_ms).collect();
    let p95: Vec<f64> = hist.iter().map(|s| s.p95_ms).collect();
    let p99: Vec<f64> = hist.iter().map(|s| s.p99_ms).collect();
    // The plan beside what happened: arrivals asked for (open model) or users asked for (closed).
    let planned: Vec<f64> = hist.iter().map(|s| s.planned).collect();
    let mut c1_series = vec![("requests", "#1f6feb", rps), ("failures", "#b3261e", failures)];
    let mut c3_series = vec![(users_label, "#6f42c1", users)];
    if planned.iter().any(|p| *p > 0.0) {
        if doc.is_open_model() || doc.stages.first().is_some_and(|s| s.unit == "req/s") {
            c1_series.push(("planned", "#8b949e", planned));
        } else {
            c3_series.push(("planned", "#8b949e", planned));
        }
    }
    let stages = stage_table(doc);
    let judged_on = match &doc.slo_stage {
        Some(stage) => format!(" (judged on stage {})", escape(stage)),
        None => String::new(),
    };
    let rows = endpoint_rows(doc);
    let slo = slo_items(doc);
    let aborted = match &doc.aborted {
        Some(why) => format!(r#"<p class="missed">Aborted by --abort-on-fail: {}</p>"#, escape(why)),
        None => String::new(),
    };
    let interrupted = match doc.planned_seconds.filter(|_| doc.interrupted) {
        Some(planned) => format!(
            r#"<p class="missed">Interrupted after {:.1} s of {planned:.0} s: the figures cover that time, and an interrupted run is not a pass.</p>"#,
            doc.duration_seconds
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test of {target}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; text-align: right; border-bottom: 1px solid #eee; }}
td:first-child, th:first-child {{ text-align: left; }} tr:last-child {{ font-weight: bold; }}
svg {{ width: 100%; max-width: 760px; display: block; margin: 1em 0; }}
.title {{ font-weight: bold; font-size: 13px; }} .axis {{ font-size: 11px; fill: #555; }} .legend {{ font-size: 11px; }}
.met {{ color: #17803d; }} .missed {{ color: #b3261e; font-weight: bold; }} .unjudged {{ color: #555; }}
</style></head><body>
<h1>Load test of {target}</h1>
<p>{duration:.1} s, {model}. SLOs{judged_on}: {verdict}.</p>
{interrupted}{aborted}<ul>{slo}</ul>
<table><tr><th>Endpoint</th><th>Requests</th><th>Failures</th><th>Status check failures</th><th>Body check failures</th><th>Req/s</th><th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>{rows}</table>
{stages}
{c1}
{c2}
{c3}
</body></html>
"#,
        target = escape(&doc.target),
        duration = doc.duration_seconds,
        model = escape(&doc.model_text()),
        verdict = verdict(doc),
        c1 = chart("Requests per second", "req/s", &c1_series),
        c2 = chart(
            "Latency percentiles",
            "ms",
            &[("p50", "#17803d", p50), ("p95", "#d97706", p95), ("p99", "#b3261e", p99)]
        ),
        c3 = chart(users_title, users_label, &c3_series),
    )
}

/// The per-stage table of a staged run (empty for one stage).
fn stage_table(doc: &ReportDoc) -> String {
    let mut stages = String::new();
    if doc.stages.len() > 1 {
        stages.push_str("<table><tr><th>Stage</th><th>Seconds</th><th>Target</th><th>Requests</th><th>Req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>Errors</th></tr>");
        for st in &doc.stages {
            let _ = write!(
                stages,
                "<tr><td>{}</td><td>{}–{}</td><td>{} → {} {}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}%</td></tr>",
                escape(&st.name),
                st.start_seconds,
                st.end_seconds,
                st.from,
                st.to,
                escape(&st.unit),
                st.requests,
                st.rps,
                st.latency_ms.p50,
                st.latency_ms.p95,
                st.latency_ms.p99,
                st.error_percent
            );
        }
        stages.push_str("</table>");
    }
    stages
}

/// One row per endpoint, then the total.
fn endpoint_rows(doc: &ReportDoc) -> String {
    let mut rows = String::new();
    for e in doc.endpoints.iter().chain(std::iter::once(&doc.total)) {
        let l = &e.latency_ms;
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(&e.name),
            e.requests,
            e.failures,
            e.check_failures.status,
            e.check_failures.body,
            e.rps,
            l.p50,
            l.p90,
            l.p95,
            l.p99,
            l.max
        );
    }
    rows
}

/// The SLO verdicts as list items, classed met, missed or unjudged.
fn slo_items(doc: &ReportDoc) -> String {
    let mut slo = String::new();
    for v in &doc.slo {
        let class = match (v.judged, v.met) {
            (false, _) => "unjudged",
            (true, true) => "met",
            (true, false) => "missed",
        };
        let _ = write!(slo, r#"<li class="{class}">{}</li>"#, escape(&v.line()));
    }
    slo
}

/// The run's SLO verdict in a word or three.
fn verdict(doc: &ReportDoc) -> &'static str {
    if doc.interrupted {
        "interrupted: not a pass"
    } else if doc.slo.is_empty() {
        "none given"
    } else if !doc.slo.iter().any(|v| v.judged) {
        "none judged"
    } else if doc.slo_met && doc.aborted.is_none() {
        "all judged ones met"
    } else {
        "MISSED"
    }
}
