//! How insights are shown: the text of `sangdam insights` and `sangdam recommend`, and
//! the report page with its charts. Pure functions of an [`Insights`].

use super::charts;
use super::drivers::Toward;
use super::recommend::CallRecommendation;
use super::report::{escape, table, ReportPage, Section};
use super::run::Insights;

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
