//! The prices an estimate multiplies by: the snapshot shipped for the default region, or a copy
//! of the AWS Price List API's figures that `cost --refresh-prices` saved, and where they came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The snapshot shipped in the repository (see its `source`).
const SNAPSHOT: &str = include_str!("../../prices/ap-northeast-1.json");

/// Prices of one region, by the names `estimate` asks for (`ec2:t3.small`, `alb:hour`), in USD per
/// the unit the Price List bills in (hour, GB-month, GB, request, alarm-month).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBook {
    pub region: String,
    pub currency: String,
    /// When the figures were current (RFC 3339 date or time).
    pub as_of: String,
    /// Where they came from, in words.
    pub source: String,
    pub prices: BTreeMap<String, f64>,
}

/// Which book an estimate used, for the output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// `snapshot` (shipped), `price-list` (fetched by `cost --refresh-prices`) or `none`.
    pub kind: &'static str,
    pub as_of: String,
    /// Whole days between `as_of` and now.
    pub age_days: Option<u64>,
    /// The saved copy's path, for `price-list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let age = self.age_days.map_or_else(String::new, |d| format!(", {d} days old"));
        match self.kind {
            "snapshot" => write!(f, "the snapshot shipped with the provisioner, of {}{age}", self.as_of),
            "price-list" => write!(f, "the AWS Price List API, fetched {}{age}", self.as_of),
            _ => f.write_str("no prices for this region: run `provisioner cost --refresh-prices`"),
        }
    }
}

impl Provenance {
    fn of(kind: &'static str, book: &PriceBook, path: Option<PathBuf>) -> Self {
        Self { kind, as_of: book.as_of.clone(), age_days: age_days(&book.as_of), path }
    }
}

impl PriceBook {
    /// USD per unit of `name`, when the book has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.prices.get(name).copied()
    }

    /// The snapshot shipped for the default region.
    pub fn snapshot() -> Self {
        serde_json::from_str(SNAPSHOT).expect("the shipped price snapshot is valid JSON")
    }

    /// The prices to use for `region`: a saved Price List copy when there is one, else the
    /// snapshot when it is of that region, else an empty book (every price missing).
    pub fn for_region(region: &str) -> (Self, Provenance) {
        let saved = saved_path(region);
        let from_file =
            saved.as_ref().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(book) = from_file.filter(|b: &PriceBook| b.region == region) {
            let provenance = Provenance::of("price-list", &book, saved);
            return (book, provenance);
        }
        let snapshot = Self::snapshot();
        if snapshot.region == region {
            let provenance = Provenance::of("snapshot", &snapshot, None);
            return (snapshot, provenance);
        }
        let empty = Self {
            region: region.into(),
            currency: "USD".into(),
            as_of: String::new(),
            source: String::new(),
            prices: BTreeMap::new(),
        };
        (empty, Provenance { kind: "none", as_of: String::new(), age_days: None, path: None })
    }

    /// Saves a fetched book where `for_region` finds it; returns the path.
    pub fn save(&self) -> std::io::Result<PathBuf> {
        let path = saved_path(&self.region).ok_or_else(|| {
            std::io::Error::other(
                "neither KONNICHIWA_PRICE_CACHE, XDG_CACHE_HOME nor HOME is set: nowhere to save prices",
            )
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, body)?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// Where fetched prices are kept: `$KONNICHIWA_PRICE_CACHE`, else the user's cache directory.
fn saved_path(region: &str) -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = env("KONNICHIWA_PRICE_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("konnichiwa/prices")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/konnichiwa/prices")))?;
    Some(dir.join(format!("{region}.json")))
}

/// Days since an RFC 3339 date (`2026-12-02`) or time.
fn age_days(as_of: &str) -> Option<u64> {
    let time = if as_of.len() == 10 { format!("{as_of}T00:00:00Z") } else { as_of.to_owned() };
    let then = humantime::parse_rfc3339_weak(&time).ok()?;
    let age = SystemTime::now().duration_since(then).unwrap_or(Duration::ZERO);
    Some(age.as_secs() / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_has_tokyos_known_prices() {
        let book = PriceBook::snapshot();
        assert_eq!(book.region, "ap-northeast-1");
        for (name, usd) in [
            ("ec2:t3.small", 0.0272),
            ("ec2:t3.medium", 0.0544),
            ("ebs:gp3", 0.096),
            ("alb:hour", 0.0243),
            ("alb:lcu", 0.008),
            ("public-ipv4", 0.005),
            ("logs:ingested", 0.76),
            ("data-transfer:out", 0.114),
            ("fargate:vcpu", 0.05056),
        ] {
            assert_eq!(book.get(name), Some(usd), "{name}");
        }
        assert!(age_days(&book.as_of).is_some(), "as_of {:?} is a date", book.as_of);
    }

    #[test]
    fn ages_count_whole_days() {
        let yesterday = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(86_400 + 60));
        assert_eq!(age_days(&yesterday.to_string()), Some(1));
        assert_eq!(age_days("not a date"), None);
    }
}
