//! The JSON result as numbered lines, for a log stream: `konnichiwa-loadtest/1 result I/N TEXT`,
//! each at most 8,000 characters of the compact JSON, so that no log driver splits or truncates
//! one (Docker's splits at 16 KiB; a CloudWatch event holds 256 KiB). A reader takes the lines of
//! a stream in any order, with anything else in between, and rebuilds the document once every
//! part is there.

use super::json::{FORMAT, ReportDoc};

const CHUNK: usize = 8_000;

fn prefix() -> String {
    format!("{FORMAT} result ")
}

/// The document as lines.
pub fn encode(doc: &ReportDoc) -> Vec<String> {
    let text = serde_json::to_string(doc).unwrap_or_default();
    let mut parts = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    let n = parts.len();
    parts.iter().enumerate().map(|(i, p)| format!("{}{}/{n} {p}", prefix(), i + 1)).collect()
}

/// The document in `lines` (a log stream's messages): Ok(None) while parts are missing.
pub fn decode<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Option<ReportDoc>, String> {
    let prefix = prefix();
    let mut parts: Vec<Option<&str>> = Vec::new();
    for line in lines {
        let Some(rest) = line.trim_end_matches(['\r', '\n']).strip_prefix(prefix.as_str()) else { continue };
        let (numbers, text) = rest.split_once(' ').ok_or("a result line without its text")?;
        let (i, n) = numbers.split_once('/').ok_or("a result line without I/N")?;
        let (i, n): (usize, usize) =
            (i.parse().map_err(|_| "a bad part number")?, n.parse().map_err(|_| "a bad part count")?);
        if i == 0 || i > n || (!parts.is_empty() && parts.len() != n) {
            return Err(format!("result part {i}/{n} does not fit the others"));
        }
        parts.resize(n, None);
        parts[i - 1] = Some(text);
    }
    if parts.is_empty() || parts.iter().any(Option::is_none) {
        return Ok(None);
    }
    let text: String = parts.into_iter().flatten().collect();
    serde_json::from_str(&text).map(Some).map_err(|e| format!("the result lines do not make a document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::document;
    use crate::stats::RunStats;

    #[test]
    fn a_document_split_into_lines_comes_back_whole_in_any_order_among_other_lines() {
        let mut stats = RunStats::new(&["GET /".to_owned()], false);
        for s in 0..120usize {
            for i in 0..50u64 {
                stats.record(0, 1_000 + i * 37 + s as u64, None, s, 10);
            }
        }
        stats.duration_seconds = 120.0;
        let doc = document("http://t", serde_json::json!({"kind": "open"}), 1, &stats, Vec::new(), None);
        let lines = encode(&doc);
        assert!(lines.len() > 1, "a long history takes several lines");
        assert!(lines.iter().all(|l| l.len() <= CHUNK + 64));
        let mut mixed: Vec<String> = vec!["elapsed 5s | users 3".into()];
        mixed.extend(lines.iter().rev().cloned());
        mixed.push("Target http://t for 120.0s".into());
        let back = decode(mixed.iter().map(String::as_str)).expect("decodes").expect("complete");
        assert_eq!(serde_json::to_value(&back).expect("json"), serde_json::to_value(&doc).expect("json"));
        assert!(decode(lines[1..].iter().map(String::as_str)).expect("no error").is_none(), "a part is missing");
        assert!(decode(["konnichiwa-loadtest/1 result 3/2 x"]).is_err());
    }
}
