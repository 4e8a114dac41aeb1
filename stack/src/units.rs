//! Human-readable values in stack.yaml: durations ("30s", "10m", "300ms") and percentages ("1%",
//! "0.5%", or a bare number). They keep the text as written and the parsed value, so loading never
//! stops at the first bad one: validation reports every unparsable value with its location.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with a unit, e.g. `30s`, `500ms`, `10m`, `1h 30m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanDuration {
    text: String,
    parsed: Result<Duration, String>,
}

/// Parses a duration as every tool takes it (stack.yaml and the command lines alike), with one
/// hint when it is wrong: a bare number gets the unit it lacks suggested.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    humantime::parse_duration(t).map_err(|_| {
        if !t.is_empty() && t.parse::<f64>().is_ok() {
            format!("{t:?} has no unit: write e.g. {t}s or {t}ms")
        } else {
            format!("{t:?} is not a duration: write a number with a unit, e.g. 300ms, 30s, 10m, 1h")
        }
    })
}

/// Parses a pause as the tools take it: one duration (`500ms`) or a range `LOW..HIGH` (`1s..3s`),
/// each pause drawn evenly from it.
pub fn parse_duration_range(text: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = match text.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(text)?;
            (d, d)
        }
    };
    if lo > hi {
        return Err(format!("{text:?}: the range must go from low to high, e.g. 1s..2s"));
    }
    Ok((lo, hi))
}

impl HumanDuration {
    pub fn parse(text: &str) -> Self {
        Self { text: text.to_owned(), parsed: parse_duration(text) }
    }

    pub fn from_duration(d: Duration) -> Self {
        let text = humantime::format_duration(d).to_string();
        Self { text, parsed: Ok(d) }
    }

    /// The value; zero for an unparsable one (a stack with one never passes validation).
    pub fn get(&self) -> Duration {
        self.parsed.clone().unwrap_or_default()
    }

    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(t) => Self::parse(&t),
            Raw::Number(n) => Self { text: n.to_string(), parsed: parse_duration(&n.to_string()) },
        })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with a unit: 300ms, 30s, 10m, 1h",
            "pattern": r"^\s*\d+(\.\d+)?\s*(ns|us|ms|s|sec|m|min|h|hr|d)(\s+\d+\s*[a-z]+)*\s*$"
        })
    }
}

/// A percentage: `1%`, `0.5%` or a bare number (`60`).
#[derive(Debug, Clone, PartialEq)]
pub struct Percent {
    text: String,
    parsed: Result<f64, String>,
}

impl Percent {
    pub fn parse(text: &str) -> Self {
        let number = text.trim().strip_suffix('%').unwrap_or(text.trim()).trim();
        let parsed = number
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?} is not a percentage; write e.g. 1% or 0.5%"));
        Self { text: text.to_owned(), parsed }
    }

    pub fn from_value(v: f64) -> Self {
        Self { text: format!("{v}%"), parsed: Ok(v) }
    }

    /// The value in percent (1% -> 1.0); zero for an unparsable one.
    pub fn get(&self) -> f64 {
        self.parsed.clone().unwrap_or_default()
    }

    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(t) => Self::parse(&t),
            Raw::Number(n) => Self { text: n.to_string(), parsed: Ok(n) },
        })
    }
}

/// Written as `N%` whether it was given as `60`, `"60"` or `60 %`, so every percentage reads
/// alike (a bare `"60"` would print quoted, a number beside it plain); unparsable text as given.
impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.parsed {
            Ok(v) => s.serialize_str(&format!("{v}%")),
            Err(_) => s.serialize_str(&self.text),
        }
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A percentage: 1%, 0.5% or a number",
            "oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%?\s*$"}]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let table = [("30s", Some(30_000)), ("300ms", Some(300)), ("10m", Some(600_000)), ("1h 30m", Some(5_400_000))];
        for (text, ms) in table {
            assert_eq!(HumanDuration::parse(text).get().as_millis() as u64, ms.unwrap_or(0), "{text}");
        }
        for bad in ["soon", "", "-5s"] {
            let d = HumanDuration::parse(bad);
            assert!(d.error().is_some_and(|e| e.contains("300ms")), "{bad}: {:?}", d.error());
        }
        assert_eq!(parse_duration("30").unwrap_err(), "\"30\" has no unit: write e.g. 30s or 30ms");
    }

    #[test]
    fn duration_ranges() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        assert_eq!(parse_duration_range("1s..3s"), Ok((s(1), s(3))));
        assert_eq!(parse_duration_range("500ms"), Ok((ms(500), ms(500))));
        assert!(parse_duration_range("3s..1s").unwrap_err().contains("from low to high"));
        assert!(parse_duration_range("1s..soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn percentages() {
        assert_eq!(Percent::parse("1%").get(), 1.0);
        assert_eq!(Percent::parse("0.5 %").get(), 0.5);
        assert_eq!(Percent::parse("60").get(), 60.0);
        assert!(Percent::parse("one percent").error().is_some());
        assert!(Percent::parse("NaN%").error().is_some());
        // Printed alike however they were written: `60`, `"60"`, `60 %` all print `60%`.
        for (given, printed) in
            [("60", "\"60%\""), ("\"60\"", "\"60%\""), ("\"0.5 %\"", "\"0.5%\""), ("\"lots\"", "\"lots\"")]
        {
            let p: Percent = serde_json::from_str(given).expect("parses");
            assert_eq!(serde_json::to_string(&p).expect("prints"), printed, "{given}");
        }
    }
}
