//! Computing, storing and showing insights: from the store's calls to the report that
//! `sangdam insights`, `recommend`, `report` and `serve` print or draw.
//!
//! Keywords, drivers and recommendations split calls into positive and negative, so they
//! see the polar calls only, and within them the polar utterances' keywords. Neutral
//! calls are counted (per period, per day, and in the charts' grey segment) but go into
//! neither side.

use serde::{Deserialize, Serialize};

use super::charts;
use super::drivers::{drivers, DriverSettings, DriversReport, Toward};
use super::keywords::Keywords;
use super::recommend::{
    business, product_stats, CallRecommendation, ProductStats, Recommendation, SimilarCalls,
};
use super::report::{escape, table, ReportPage, Section};
use super::stats::{keyword_stats, KeywordStats, Period};
use super::Doc;
use super::InsightsConfig;
use crate::audio::Speaker;
use crate::sentiment::Label;
use crate::store::{Day, Store, StoreError};

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

/// The store's calls as the insight models take them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreDocs {
    /// The polar calls, oldest first.
    pub docs: Vec<Doc>,
    /// The day (store's time zone) of each neutral call, oldest first.
    pub neutral: Vec<Day>,
    /// Stored calls in neither list: no sentiment, empty, or older than the newest
    /// `max_calls` polar calls.
    pub left_out: usize,
}

/// The polar calls of the store as insight documents, see [`load_docs`]. Returns the
/// documents and how many calls are not among them (neutral ones included).
pub fn docs_from_store(
    store: &Store,
    keywords: &Keywords,
    max_calls: usize,
) -> Result<(Vec<Doc>, usize), StoreError> {
    let d = load_docs(store, keywords, max_calls)?;
    Ok((d.docs, d.left_out + d.neutral.len()))
}

/// The calls of the store for the insight models: the customer's side of two-channel
/// calls (whose satisfaction counts; the agent's politeness would drown it), the whole
/// mixed channel of mono ones. The newest `max_calls` polar calls become [`Doc`]s, their
/// keywords from their polar utterances (utterances stored without a label count as
/// polar); the neutral calls among them are counted.
pub fn load_docs(
    store: &Store,
    keywords: &Keywords,
    max_calls: usize,
) -> Result<StoreDocs, StoreError> {
    let calls = store.calls()?;
    let total = calls.len();
    let mut docs = Vec::new();
    let mut neutral = Vec::new();
    for call in calls.iter().rev() {
        if docs.len() >= max_calls {
            break;
        }
        let positive = match call.sentiment.as_ref().map(|s| s.overall) {
            Some(Label::Positive) => true,
            Some(Label::Negative) => false,
            Some(Label::Neutral) => {
                neutral.push(store.day_of(call.analysed_at));
                continue;
            }
            Some(Label::Empty) | None => continue,
        };
        let utts = store.utterances(&call.id)?;
        let customer = utts.iter().any(|u| u.speaker == Speaker::Customer);
        let side: Vec<&crate::store::UtteranceRecord> = utts
            .iter()
            .filter(|u| !customer || u.speaker == Speaker::Customer)
            .filter(|u| !u.text.trim().is_empty())
            .collect();
        let kw = side
            .iter()
            .filter(|u| u.sentiment.is_none_or(|s| s.label.is_polar()))
            .flat_map(|u| keywords.extract(&u.text))
            .collect();
        docs.push(Doc {
            id: call.id.to_hex(),
            at: call.analysed_at,
            day: store.day_of(call.analysed_at),
            keywords: kw,
            positive,
            texts: side.iter().map(|u| u.text.clone()).collect(),
        });
    }
    docs.reverse();
    neutral.reverse();
    let left_out = total - docs.len() - neutral.len();
    Ok(StoreDocs {
        docs,
        neutral,
        left_out,
    })
}

/// Labelled texts as calls, one per row of an `id<TAB>text<TAB>label` file (label 1
/// positive, 0 negative; a header line starting with `id` is skipped), at most `max`:
/// for trying the keyword and driver pipeline on text corpora such as NSMC.
pub fn docs_from_tsv(
    path: &std::path::Path,
    keywords: &Keywords,
    max: usize,
) -> Result<Vec<Doc>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (expected id<TAB>text<TAB>label lines)",
            path.display()
        )
    })?;
    let mut docs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if docs.len() >= max {
            break;
        }
        if n == 0 && line.starts_with("id") {
            continue;
        }
        let mut parts = line.split('\t');
        let (Some(id), Some(t), Some(label)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let positive = match label.trim() {
            "1" => true,
            "0" => false,
            _ => continue,
        };
        docs.push(Doc {
            id: id.to_owned(),
            at: 0,
            day: Day(0),
            keywords: keywords.extract(t),
            positive,
            texts: vec![t.to_owned()],
        });
    }
    if docs.is_empty() {
        return Err(format!(
            "{}: no id<TAB>text<TAB>label rows with label 0 or 1",
            path.display()
        ));
    }
    Ok(docs)
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

/// The stored insights, recomputed first when `refresh` is set, when there are none,
/// when they are older than `refresh_hours`, or when calls were added since.
pub fn load_or_refresh(
    store: &Store,
    cfg: &InsightsConfig,
    refresh: bool,
    now: u64,
) -> Result<(Insights, bool), StoreError> {
    let stored: Option<Insights> = store.insights().unwrap_or(None);
    if let Some(s) = stored {
        let fresh = cfg.refresh_hours == 0
            || now.saturating_sub(s.generated_at) < u64::from(cfg.refresh_hours) * 3600;
        let calls_now = store.call_count();
        if !refresh && fresh && s.calls + s.neutral_calls + s.calls_left_out == calls_now {
            return Ok((s, false));
        }
    }
    let keywords = Keywords::new(&cfg.extra_stopwords);
    let d = load_docs(store, &keywords, cfg.max_calls)?;
    let insights =
        compute_with_neutral(&d.docs, &d.neutral, d.left_out, cfg, now, store.time_zone());
    store.put_insights(&insights)?;
    Ok((insights, true))
}

fn toward(t: &Toward) -> &'static str {
    match t {
        Toward::Negative => "negative",
        Toward::Positive => "positive",
    }
}

/// The text `sangdam insights` prints.
pub fn insights_text(i: &Insights) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "insights over {} calls with a positive or negative sentiment and {} neutral calls beside them ({} left out), computed {}",
        i.calls,
        i.neutral_calls,
        i.calls_left_out,
        i.generated_text()
    );
    for p in &i.periods {
        let _ = writeln!(
            o,
            "\n== {}: {} polar calls, {} positive, {} negative; {} neutral",
            p.period.label(),
            p.calls,
            p.positive_calls,
            p.negative_calls,
            p.neutral_calls
        );
        let list = |v: &[super::stats::KeywordCount]| {
            v.iter()
                .take(15)
                .map(|k| format!("{} {}", k.keyword, k.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(o, "top keywords:      {}", list(&p.top));
        let _ = writeln!(o, "in negative calls: {}", list(&p.top_negative));
        let _ = writeln!(o, "in positive calls: {}", list(&p.top_positive));
        let _ = writeln!(
            o,
            "more negative (keyword: negative/positive calls, z): {}",
            p.over_negative
                .iter()
                .take(10)
                .map(|c| format!(
                    "{}: {}/{} z={:.1}",
                    c.keyword, c.negative_calls, c.positive_calls, c.z
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            o,
            "more positive (keyword: negative/positive calls, z): {}",
            p.over_positive
                .iter()
                .take(10)
                .map(|c| format!(
                    "{}: {}/{} z={:.1}",
                    c.keyword, c.negative_calls, c.positive_calls, c.z
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match (&i.drivers, &i.drivers_error) {
        (Some(d), _) => {
            let _ = writeln!(
                o,
                "\n== drivers: {} calls ({} train, {} validation), {} features; validation accuracy: {} {:.1}%, single decision tree {:.1}%, majority class {:.1}%",
                d.docs,
                d.train_docs,
                d.validation_docs,
                d.features,
                d.ensemble,
                d.ensemble_accuracy * 100.0,
                d.tree_accuracy * 100.0,
                d.majority_accuracy * 100.0
            );
            for (n, dr) in d.drivers.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "{:>2}. {:<12} gain {:>5.1}%  towards {:<8}  {} calls ({} negative, {} positive){}",
                    n + 1,
                    dr.feature,
                    dr.gain * 100.0,
                    toward(&dr.toward),
                    dr.docs,
                    dr.negative_docs,
                    dr.positive_docs,
                    dr.examples
                        .first()
                        .map(|e| format!("  e.g. \"{e}\""))
                        .unwrap_or_default()
                );
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(o, "\n== drivers: none: {e}");
        }
        (None, None) => {}
    }
    o
}

/// The text `sangdam recommend` prints.
pub fn recommend_text(
    i: &Insights,
    call: Option<&CallRecommendation>,
    catalogue: &[super::Product],
) -> String {
    use std::fmt::Write;
    let name = |id: &str| {
        catalogue
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let mut o = String::new();
    if i.recommendations.is_empty() {
        let _ = writeln!(
            o,
            "no recommendations yet: {} polar calls (and {} neutral)",
            i.calls, i.neutral_calls
        );
    }
    for r in &i.recommendations {
        let _ = writeln!(o, "{}", r.headline);
        for e in &r.evidence {
            let _ = writeln!(o, "    {e}");
        }
        for e in r.examples.iter().take(2) {
            let _ = writeln!(o, "    e.g. \"{e}\"");
        }
    }
    let calls: Vec<&CallRecommendation> = match call {
        Some(c) => vec![c],
        None => i
            .call_recommendations
            .iter()
            .filter(|c| !c.asked.is_empty() || !c.suggested.is_empty())
            .take(10)
            .collect(),
    };
    if !calls.is_empty() {
        let _ = writeln!(
            o,
            "\nper call (asked about -> satisfied similar callers also had):"
        );
    }
    for c in calls {
        let asked: Vec<String> = c.asked.iter().map(|a| name(a)).collect();
        let sugg: Vec<String> = c
            .suggested
            .iter()
            .map(|(p, s)| format!("{} ({s:.2})", name(p)))
            .collect();
        let _ = writeln!(
            o,
            "{}  asked: {}  ->  {}",
            &c.call[..c.call.len().min(12)],
            if asked.is_empty() {
                "-".to_owned()
            } else {
                asked.join(", ")
            },
            if sugg.is_empty() {
                "-".to_owned()
            } else {
                sugg.join(", ")
            }
        );
    }
    o
}

/// The report page.
pub fn page(i: &Insights, title: &str) -> ReportPage {
    let mut sections = Vec::new();
    let all = i.periods.last();
    let (pos, neg) = i
        .days
        .iter()
        .fold((0, 0), |(p, n), (_, dp, dn)| (p + dp, n + dn));
    let neutral: u64 = i.neutral_days.iter().map(|(_, n)| n).sum();
    sections.push(Section {
        heading: "통화 감정 분포 (sentiment of calls)".into(),
        svg: Some(charts::sentiment_split(
            "Calls by sentiment",
            pos,
            neutral,
            neg,
            640,
        )),
        html: format!(
            "<p>{} polar calls (positive or negative) and {} neutral calls; keywords, drivers and recommendations use the polar calls only. {} stored calls left out (no sentiment model at the time, or beyond the newest {} polar calls).</p>",
            i.calls, i.neutral_calls, i.calls_left_out, i.calls
        ),
    });
    sections.push(Section {
        heading: "일별 감정 (sentiment per day)".into(),
        svg: Some(charts::daily_sentiment_lines(
            if neutral > 0 {
                "Positive, negative and neutral calls per day"
            } else {
                "Positive and negative calls per day"
            },
            &per_day(i),
            900,
            320,
        )),
        html: String::new(),
    });
    if let Some(all) = all {
        let words = |v: &[super::stats::KeywordCount]| -> Vec<(String, f64)> {
            v.iter()
                .map(|k| (k.keyword.clone(), k.count as f64))
                .collect()
        };
        let sides = [
            (
                "부정 통화의 키워드 (what customers complain about)",
                "Negative",
                &all.top_negative,
                &all.over_negative,
                charts::NEGATIVE,
            ),
            (
                "긍정 통화의 키워드 (what customers praise)",
                "Positive",
                &all.top_positive,
                &all.over_positive,
                charts::POSITIVE,
            ),
        ];
        for (n, (heading, side, top, over, color)) in sides.into_iter().enumerate() {
            sections.push(Section {
                heading: heading.into(),
                svg: Some(format!(
                    "{}{}",
                    charts::bar_chart(
                        &format!("Top keywords in {} calls", side.to_lowercase()),
                        &words(&top[..top.len().min(15)]),
                        color,
                        560
                    ),
                    charts::word_cloud(
                        &format!("{side} calls"),
                        &words(top),
                        color,
                        560,
                        320,
                        n as u64 + 1
                    )
                )),
                html: contrast_table(over),
            });
        }
    }
    match (&i.drivers, &i.drivers_error) {
        (Some(d), _) => {
            let items: Vec<(String, f64, bool)> = d
                .drivers
                .iter()
                .map(|x| {
                    (
                        x.feature.clone(),
                        x.gain * 100.0,
                        x.toward == Toward::Positive,
                    )
                })
                .collect();
            let rows: Vec<Vec<String>> = d
                .drivers
                .iter()
                .map(|x| {
                    vec![
                        x.feature.clone(),
                        format!("{:.1}%", x.gain * 100.0),
                        toward(&x.toward).to_owned(),
                        format!(
                            "{} ({} negative, {} positive)",
                            x.docs, x.negative_docs, x.positive_docs
                        ),
                        x.examples.first().cloned().unwrap_or_default(),
                    ]
                })
                .collect();
            sections.push(Section {
                heading: "만족도 요인 (drivers of satisfaction)".into(),
                svg: Some(charts::importance_chart("Feature importance (share of gain)", &items, 900)),
                html: format!(
                    "<p>Validation accuracy on {} held-out calls: {} {:.1}%, single decision tree {:.1}%, majority class {:.1}%.</p>{}",
                    d.validation_docs,
                    escape(&d.ensemble),
                    d.ensemble_accuracy * 100.0,
                    d.tree_accuracy * 100.0,
                    d.majority_accuracy * 100.0,
                    table(&["feature", "gain", "towards", "calls", "example"], &rows)
                ),
            });
        }
        (None, Some(e)) => sections.push(Section {
            heading: "만족도 요인 (drivers of satisfaction)".into(),
            svg: None,
            html: format!("<p>No drivers yet: {}</p>", escape(e)),
        }),
        (None, None) => {}
    }
    let rec_rows: Vec<Vec<String>> = i
        .recommendations
        .iter()
        .map(|r| {
            vec![
                r.action.as_str().to_owned(),
                r.headline.clone(),
                r.evidence.join("; "),
            ]
        })
        .collect();
    sections.push(Section {
        heading: "추천 (recommendations)".into(),
        svg: None,
        html: if rec_rows.is_empty() {
            "<p>No recommendations yet.</p>".into()
        } else {
            table(&["action", "recommendation", "evidence"], &rec_rows)
        },
    });
    let prod_rows: Vec<Vec<String>> = i
        .products
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.category.clone(),
                p.calls.to_string(),
                p.positive_calls.to_string(),
                p.negative_calls.to_string(),
                if p.calls > 0 {
                    format!("{:.0}%", p.positive_share() * 100.0)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    sections.push(Section {
        heading: "상품 (products)".into(),
        svg: None,
        html: table(
            &[
                "product",
                "category",
                "calls",
                "positive",
                "negative",
                "positive share",
            ],
            &prod_rows,
        ),
    });
    ReportPage {
        title: title.to_owned(),
        generated: i.generated_text(),
        period: all
            .map(|p| p.period.label())
            .unwrap_or_else(|| "all".into()),
        sections,
    }
}

/// (day, positive, negative, neutral) for every day with calls.
fn per_day(i: &Insights) -> Vec<(String, u64, u64, u64)> {
    let mut days: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for (d, p, n) in &i.days {
        let e = days.entry(d.as_str()).or_default();
        (e.0, e.1) = (*p, *n);
    }
    for (d, n) in &i.neutral_days {
        days.entry(d.as_str()).or_default().2 = *n;
    }
    days.into_iter()
        .map(|(d, (p, n, u))| (d.to_owned(), p, n, u))
        .collect()
}

fn contrast_table(v: &[super::stats::Contrast]) -> String {
    let rows: Vec<Vec<String>> = v
        .iter()
        .take(15)
        .map(|c| {
            vec![
                c.keyword.clone(),
                c.negative_calls.to_string(),
                c.positive_calls.to_string(),
                format!("{:.2}", c.log_odds),
                format!("{:.1}", c.z),
            ]
        })
        .collect();
    table(
        &[
            "keyword",
            "negative calls",
            "positive calls",
            "log-odds",
            "z",
        ],
        &rows,
    )
}
