//! Computing insights: from the calls' documents to the [`Insights`] that `sangdam
//! insights`, `recommend`, `report` and `serve` print or draw. Pure: the documents come
//! from [`super::source`] (which also stores the result), and [`super::render`] shows
//! it. Both are re-exported here, so `insights::run::load_or_refresh` and
//! `insights::run::page` keep their paths.
//!
//! Keywords, drivers and recommendations split calls into positive and negative, so they
//! see the polar calls only, and within them the polar utterances' keywords. Neutral
//! calls are counted (per period, per day, and in the charts' grey segment) but go into
//! neither side.

use serde::{Deserialize, Serialize};

use super::drivers::{drivers, DriverSettings, DriversReport};
use super::recommend::{
    business, product_stats, CallRecommendation, ProductStats, Recommendation, SimilarCalls,
};
pub use super::render::{insights_text, page, recommend_text};
pub use super::source::{
    docs_from_store, docs_from_tsv, load_docs, load_or_refresh, StoreDocs, TsvError,
};
use super::stats::{keyword_stats, KeywordStats, Period};
use super::Doc;
use super::InsightsConfig;
use crate::store::Day;

/// Per-call recommendations are kept for this many of the newest calls.
pub const CALL_RECOMMENDATIONS: usize = 200;

/// Everything the insight commands show, as stored in the `insights` tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// Unix seconds when computed.
    pub generated_at: u64,
    /// Polar calls (overall positive or negative) that went in.
    pub calls: usize,
    /// Neutral calls counted beside them (absent, so 0, in insights stored by an older
    /// build).
    #[serde(default)]
    pub neutral_calls: usize,
    /// Stored calls left out: no sentiment (no model at the time) or beyond `max_calls`.
    pub calls_left_out: usize,
    /// Day, week and all, ending with the newest call.
    pub periods: Vec<KeywordStats>,
    pub drivers: Option<DriversReport>,
    /// Why there are no drivers, when there are none.
    pub drivers_error: Option<String>,
    pub recommendations: Vec<Recommendation>,
    pub products: Vec<ProductStats>,
    pub call_recommendations: Vec<CallRecommendation>,
    /// Per day: (YYYY-MM-DD, positive calls, negative calls).
    pub days: Vec<(String, u64, u64)>,
    /// Per day with neutral calls: (YYYY-MM-DD, neutral calls).
    #[serde(default)]
    pub neutral_days: Vec<(String, u64)>,
    /// The IANA time zone the days were cut in (empty, read as UTC, in insights stored by
    /// an older build).
    #[serde(default)]
    pub time_zone: String,
}

impl Insights {
    /// When these insights were computed, in the zone their days were cut in.
    pub fn generated_text(&self) -> String {
        let tz =
            sangdam_wire::day::time_zone(&self.time_zone).unwrap_or(crate::store::TimeZone::UTC);
        sangdam_wire::day::format_unix(self.generated_at, &tz)
    }
}

/// Computes insights over `docs` (polar calls, oldest first) and no neutral calls.
pub fn compute(docs: &[Doc], left_out: usize, cfg: &InsightsConfig, now: u64) -> Insights {
    compute_with_neutral(docs, &[], left_out, cfg, now, &crate::store::TimeZone::UTC)
}

/// Computes insights over `docs` (polar calls, oldest first), counting the neutral calls
/// analysed on the days `neutral` per period and per day. With no calls at all the
/// periods end on the day of `now` in `tz`.
pub fn compute_with_neutral(
    docs: &[Doc],
    neutral: &[Day],
    left_out: usize,
    cfg: &InsightsConfig,
    now: u64,
    tz: &crate::store::TimeZone,
) -> Insights {
    let latest = docs
        .iter()
        .map(|d| d.day)
        .chain(neutral.iter().copied())
        .max()
        .unwrap_or_else(|| Day::of_unix(now, tz));
    let periods: Vec<KeywordStats> = Period::standard(latest)
        .into_iter()
        .map(|p| KeywordStats {
            neutral_calls: neutral.iter().filter(|&&d| p.contains(d)).count() as u64,
            ..keyword_stats(docs, p, cfg.top)
        })
        .collect();
    let settings = DriverSettings {
        top: cfg.top,
        max_docs: cfg.max_calls,
        ..DriverSettings::default()
    };
    let (drivers_report, drivers_error) = match drivers(docs, &settings) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let recommendations = business(docs, drivers_report.as_ref(), &cfg.products, 10);
    let similar = SimilarCalls::new(docs, &cfg.products);
    let call_recommendations = docs
        .iter()
        .rev()
        .take(CALL_RECOMMENDATIONS)
        .map(|d| similar.for_call(d, 3))
        .collect();
    let mut by_day: std::collections::BTreeMap<Day, (u64, u64)> = Default::default();
    for d in docs {
        let e = by_day.entry(d.day).or_default();
        if d.positive {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let mut neutral_by_day: std::collections::BTreeMap<Day, u64> = Default::default();
    for &d in neutral {
        *neutral_by_day.entry(d).or_default() += 1;
    }
    Insights {
        time_zone: tz.iana_name().unwrap_or("UTC").to_owned(),
        generated_at: now,
        calls: docs.len(),
        neutral_calls: neutral.len(),
        calls_left_out: left_out,
        periods,
        drivers: drivers_report,
        drivers_error,
        recommendations,
        products: product_stats(docs, &cfg.products),
        call_recommendations,
        days: by_day
            .into_iter()
            .map(|(d, (p, n))| (d.to_string(), p, n))
            .collect(),
        neutral_days: neutral_by_day
            .into_iter()
            .map(|(d, n)| (d.to_string(), n))
            .collect(),
    }
}
