//! The product catalogue and recommendations.
//!
//! Business recommendations come from three kinds of evidence, each kept with the
//! recommendation so a manager can check it:
//!
//! - **improve**: a keyword over-represented in negative calls over the last 30 days
//!   (log-odds z ≥ [`MIN_Z`]) or a driver that pushes calls towards negative: how many
//!   negative calls mention it, and the change against the 30 days before;
//! - **promote**: a catalogue product whose mentions are mostly in positive calls, or a
//!   driver that pushes towards positive;
//! - **fix**: a catalogue product whose mentions are mostly in negative calls.
//!
//! Per call: the catalogue products the caller mentioned, and the products that
//! satisfied similar callers: among positive calls, weighted by keyword overlap (Jaccard)
//! with this call, the products they mention that this call did not.
//!
//! Every share here (negative calls mentioning a keyword, a product's positive share, the
//! share it is compared with) is over **polar** calls, positive or negative: the docs are
//! those alone, and neutral calls lean neither way. The evidence says so.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::drivers::{DriversReport, Toward};
use super::stats::{keyword_stats, KeywordStats, Period};
use super::{Doc, Product};
use crate::store::Day;

/// Keywords need at least this log-odds z-score to be recommended for improvement.
pub const MIN_Z: f64 = 1.96;
/// A product needs at least this many calls before its sentiment share means anything.
pub const MIN_PRODUCT_CALLS: u64 = 5;

impl Product {
    /// The name and aliases, squashed for matching.
    pub fn forms(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|s| squash(s))
            .filter(|s| !s.is_empty())
    }

    /// Whether the (squashed) text mentions the product.
    pub fn mentioned_in(&self, squashed: &str) -> bool {
        self.forms().any(|f| squashed.contains(&f))
    }
}

/// Lowercase, without whitespace.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Products mentioned in a call, by catalogue order.
pub fn products_in(doc: &Doc, catalogue: &[Product]) -> Vec<String> {
    let text = squash(&doc.texts.join(" "));
    catalogue
        .iter()
        .filter(|p| p.mentioned_in(&text))
        .map(|p| p.id.clone())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Improve,
    Fix,
    Promote,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Improve => "improve",
            Action::Fix => "fix",
            Action::Promote => "promote",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub action: Action,
    /// The keyword or product name.
    pub subject: String,
    /// The catalogue id when the subject is a product.
    pub product: Option<String>,
    /// One line, e.g. "improve: 한도 — 41 negative calls in the last 30 days, up 30%".
    pub headline: String,
    /// The numbers behind it, one per line.
    pub evidence: Vec<String>,
    /// Example utterances.
    pub examples: Vec<String>,
    /// For ordering within an action (higher first).
    pub weight: f64,
}

/// How callers feel about one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductStats {
    pub id: String,
    pub name: String,
    pub category: String,
    /// Polar calls that mention it: `positive_calls + negative_calls`.
    pub calls: u64,
    pub positive_calls: u64,
    pub negative_calls: u64,
}

impl ProductStats {
    pub fn positive_share(&self) -> f64 {
        self.positive_calls as f64 / self.calls.max(1) as f64
    }
}

pub fn product_stats(docs: &[Doc], catalogue: &[Product]) -> Vec<ProductStats> {
    let mut out: Vec<ProductStats> = catalogue
        .iter()
        .map(|p| ProductStats {
            id: p.id.clone(),
            name: p.name.clone(),
            category: p.category.clone(),
            calls: 0,
            positive_calls: 0,
            negative_calls: 0,
        })
        .collect();
    for d in docs {
        let text = squash(&d.texts.join(" "));
        for (p, s) in catalogue.iter().zip(out.iter_mut()) {
            if p.mentioned_in(&text) {
                s.calls += 1;
                if d.positive {
                    s.positive_calls += 1;
                } else {
                    s.negative_calls += 1;
                }
            }
        }
    }
    out
}

fn change(now: u64, before: u64) -> String {
    if before == 0 {
        if now == 0 {
            "none in the 30 days before either".to_owned()
        } else {
            "none in the 30 days before".to_owned()
        }
    } else {
        let pct = (now as f64 - before as f64) / before as f64 * 100.0;
        if pct.abs() < 0.5 {
            "unchanged on the 30 days before".to_owned()
        } else if pct > 0.0 {
            format!("up {pct:.0}% on the 30 days before ({before})")
        } else {
            format!("down {:.0}% on the 30 days before ({before})", -pct)
        }
    }
}

fn examples_of(docs: &[Doc], word: &str, positive: bool, n: usize) -> Vec<String> {
    let mut v: Vec<&String> = docs
        .iter()
        .filter(|d| d.positive == positive)
        .flat_map(|d| d.texts.iter())
        .filter(|t| t.contains(word))
        .collect();
    v.sort_by_key(|t| (t.chars().count(), t.as_str()));
    v.dedup();
    v.into_iter().take(n).cloned().collect()
}

/// The last 30 days up to the newest call, and the 30 days before them.
pub fn months(docs: &[Doc]) -> (Period, Period) {
    let end = docs.iter().map(|d| d.day).max().unwrap_or(Day(0));
    // Before the first 30 days of the calendar there is no earlier month.
    let before = match end.0.checked_sub(30) {
        Some(e) => Period::Days {
            end: Day(e),
            days: 30,
        },
        None => Period::Days { end, days: 0 },
    };
    (Period::Days { end, days: 30 }, before)
}

/// Business recommendations, each action's list ordered by weight, at most `n` each.
pub fn business(
    docs: &[Doc],
    drivers: Option<&DriversReport>,
    catalogue: &[Product],
    n: usize,
) -> Vec<Recommendation> {
    let (month, before) = months(docs);
    let now: KeywordStats = keyword_stats(docs, month, 200);
    let prev: KeywordStats = keyword_stats(docs, before, 10_000);
    let month_docs: Vec<Doc> = docs
        .iter()
        .filter(|d| month.contains(d.day))
        .cloned()
        .collect();
    let prev_neg = |k: &str| {
        prev.over_negative
            .iter()
            .chain(&prev.over_positive)
            .find(|c| c.keyword == k)
            .map(|c| c.negative_calls)
            .or_else(|| {
                prev.top_negative
                    .iter()
                    .find(|c| c.keyword == k)
                    .map(|c| c.calls)
            })
            .unwrap_or(0)
    };
    let mut out: Vec<Recommendation> = Vec::new();
    let mut covered: HashSet<String> = HashSet::new();

    // Improve: over-represented in negative calls, and negative drivers.
    for c in now.over_negative.iter().filter(|c| c.z >= MIN_Z) {
        let before_calls = prev_neg(&c.keyword);
        let driver = drivers.and_then(|r| r.drivers.iter().find(|d| d.feature == c.keyword));
        let mut evidence = vec![
            format!(
                "in {} negative and {} positive calls of {} polar (positive or negative) calls in the last 30 days",
                c.negative_calls, c.positive_calls, now.calls
            ),
            format!(
                "log-odds towards negative {:.2} (z = {:.1}, {} vs {} mentions)",
                c.log_odds, c.z, c.negative_count, c.positive_count
            ),
        ];
        if let Some(d) = driver {
            evidence.push(format!(
                "driver of sentiment: {:.1}% of the ensemble's gain, towards {}",
                d.gain * 100.0,
                toward(&d.toward)
            ));
        }
        covered.insert(c.keyword.clone());
        out.push(Recommendation {
            action: Action::Improve,
            subject: c.keyword.clone(),
            product: None,
            headline: format!(
                "improve: {} — {} negative calls in the last 30 days, {}",
                c.keyword,
                c.negative_calls,
                change(c.negative_calls, before_calls)
            ),
            evidence,
            examples: examples_of(&month_docs, &c.keyword, false, 3),
            weight: c.z + driver.map(|d| d.gain * 100.0).unwrap_or(0.0),
        });
    }
    if let Some(r) = drivers {
        for d in r.drivers.iter().filter(|d| d.toward == Toward::Negative) {
            if covered.contains(&d.feature) {
                continue;
            }
            covered.insert(d.feature.clone());
            out.push(Recommendation {
                action: Action::Improve,
                subject: d.feature.clone(),
                product: None,
                headline: format!(
                    "improve: {} — pushes calls towards negative ({:.1}% of the model's gain; {} of {} calls mentioning it negative)",
                    d.feature,
                    d.gain * 100.0,
                    d.negative_docs,
                    d.docs
                ),
                evidence: vec![format!(
                    "gradient-boosted trees, validation accuracy {:.1}% (single tree {:.1}%, majority {:.1}%)",
                    r.ensemble_accuracy * 100.0,
                    r.tree_accuracy * 100.0,
                    r.majority_accuracy * 100.0
                )],
                examples: d.examples.clone(),
                weight: d.gain * 100.0,
            });
        }
    }

    // Products: promote the liked, fix the disliked.
    let all = product_stats(docs, catalogue);
    let overall_pos = docs.iter().filter(|d| d.positive).count() as f64 / docs.len().max(1) as f64;
    for (p, s) in catalogue.iter().zip(&all) {
        if s.calls < MIN_PRODUCT_CALLS {
            continue;
        }
        let share = s.positive_share();
        let driver = drivers.and_then(|r| {
            r.drivers
                .iter()
                .find(|d| p.forms().any(|f| squash(&d.feature) == f))
        });
        let mut evidence = vec![format!(
            "mentioned in {} polar calls: {} positive, {} negative ({:.0}% positive; all polar calls {:.0}%)",
            s.calls,
            s.positive_calls,
            s.negative_calls,
            share * 100.0,
            overall_pos * 100.0
        )];
        if let Some(d) = driver {
            evidence.push(format!(
                "driver of sentiment: {:.1}% of the ensemble's gain, towards {}",
                d.gain * 100.0,
                toward(&d.toward)
            ));
        }
        let (action, verdict) = if share >= overall_pos + 0.1 {
            (
                Action::Promote,
                "callers who mention it are mostly satisfied",
            )
        } else if share + 0.1 <= overall_pos {
            (Action::Fix, "callers who mention it are mostly unhappy")
        } else {
            continue;
        };
        let lean = if action == Action::Promote {
            share - overall_pos
        } else {
            overall_pos - share
        };
        out.push(Recommendation {
            action,
            subject: p.name.clone(),
            product: Some(p.id.clone()),
            headline: format!(
                "{}: {} — {verdict} ({} of {} calls {})",
                action.as_str(),
                p.name,
                if action == Action::Promote {
                    s.positive_calls
                } else {
                    s.negative_calls
                },
                s.calls,
                if action == Action::Promote {
                    "positive"
                } else {
                    "negative"
                }
            ),
            evidence,
            examples: examples_of(
                docs,
                p.forms().next().as_deref().unwrap_or(""),
                action == Action::Promote,
                3,
            ),
            weight: lean * 100.0 + driver.map(|d| d.gain * 100.0).unwrap_or(0.0),
        });
    }
    if let Some(r) = drivers {
        for d in r.drivers.iter().filter(|d| d.toward == Toward::Positive) {
            if covered.contains(&d.feature)
                || out.iter().any(|o| squash(&o.subject) == squash(&d.feature))
            {
                continue;
            }
            covered.insert(d.feature.clone());
            out.push(Recommendation {
                action: Action::Promote,
                subject: d.feature.clone(),
                product: None,
                headline: format!(
                    "promote: {} — pushes calls towards positive ({:.1}% of the model's gain; {} of {} calls mentioning it positive)",
                    d.feature,
                    d.gain * 100.0,
                    d.positive_docs,
                    d.docs
                ),
                evidence: vec![],
                examples: d.examples.clone(),
                weight: d.gain * 100.0,
            });
        }
    }

    let mut grouped: BTreeMap<u8, Vec<Recommendation>> = BTreeMap::new();
    for r in out {
        let key = match r.action {
            Action::Improve => 0,
            Action::Fix => 1,
            Action::Promote => 2,
        };
        grouped.entry(key).or_default().push(r);
    }
    grouped
        .into_values()
        .flat_map(|mut v| {
            v.sort_by(|a, b| {
                b.weight
                    .total_cmp(&a.weight)
                    .then(a.subject.cmp(&b.subject))
            });
            v.truncate(n);
            v
        })
        .collect()
}

fn toward(t: &Toward) -> &'static str {
    match t {
        Toward::Negative => "negative",
        Toward::Positive => "positive",
    }
}

/// What one call asked about and what satisfied similar callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecommendation {
    pub call: String,
    /// Catalogue ids mentioned in the call.
    pub asked: Vec<String>,
    /// Catalogue ids with a score (summed keyword overlap with the positive calls that
    /// mention them), best first.
    pub suggested: Vec<(String, f64)>,
}

fn jaccard(a: &HashSet<&str>, b: &HashSet<&str>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// The positive calls, indexed once for per-call recommendations.
pub struct SimilarCalls<'a> {
    catalogue: &'a [Product],
    positive: Vec<(&'a str, HashSet<&'a str>, Vec<String>)>,
}

impl<'a> SimilarCalls<'a> {
    pub fn new(docs: &'a [Doc], catalogue: &'a [Product]) -> Self {
        let positive = docs
            .iter()
            .filter(|d| d.positive)
            .map(|d| {
                (
                    d.id.as_str(),
                    d.keywords.iter().map(String::as_str).collect(),
                    products_in(d, catalogue),
                )
            })
            .filter(|(_, _, p): &(_, _, Vec<String>)| !p.is_empty())
            .collect();
        SimilarCalls {
            catalogue,
            positive,
        }
    }

    /// Recommendations for `doc`, at most `n`: products of positive calls weighted by
    /// their keyword overlap with `doc`, less those `doc` already mentions.
    pub fn for_call(&self, doc: &Doc, n: usize) -> CallRecommendation {
        let asked = products_in(doc, self.catalogue);
        let mine: HashSet<&str> = doc.keywords.iter().map(String::as_str).collect();
        let mut scores: BTreeMap<&str, f64> = BTreeMap::new();
        for (id, theirs, products) in &self.positive {
            if *id == doc.id {
                continue;
            }
            let sim = jaccard(&mine, theirs);
            if sim <= 0.0 {
                continue;
            }
            for p in products {
                if !asked.contains(p) {
                    *scores.entry(p.as_str()).or_default() += sim;
                }
            }
        }
        let mut suggested: Vec<(String, f64)> =
            scores.into_iter().map(|(p, s)| (p.to_owned(), s)).collect();
        suggested.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        suggested.truncate(n);
        CallRecommendation {
            call: doc.id.clone(),
            asked,
            suggested,
        }
    }
}

/// Recommendations for `doc` from the positive calls in `docs`, at most `n`.
pub fn for_call(doc: &Doc, docs: &[Doc], catalogue: &[Product], n: usize) -> CallRecommendation {
    SimilarCalls::new(docs, catalogue).for_call(doc, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Vec<Product> {
        vec![
            Product {
                id: "sharing-card".into(),
                name: "쉐어링 카드".into(),
                aliases: vec!["쉐어링카드".into()],
                category: "card".into(),
            },
            Product {
                id: "loan".into(),
                name: "카드론".into(),
                aliases: vec![],
                category: "loan".into(),
            },
            Product {
                id: "app".into(),
                name: "모바일 앱".into(),
                aliases: vec!["앱".into()],
                category: "digital".into(),
            },
        ]
    }

    fn doc(id: usize, at_day: u64, positive: bool, text: &str, kw: &[&str]) -> Doc {
        Doc {
            id: format!("c{id}"),
            at: at_day * 86_400,
            day: Day(at_day as u32),
            keywords: kw.iter().map(|s| s.to_string()).collect(),
            positive,
            texts: vec![text.to_owned()],
        }
    }

    fn corpus() -> Vec<Doc> {
        let mut v = Vec::new();
        let mut id = 0;
        // The month before: 4 complaints about 한도; this month: 10.
        for i in 0..4 {
            id += 1;
            v.push(doc(
                id,
                20_000 + i,
                false,
                "카드 한도가 너무 낮아요",
                &["카드", "한도", "낮"],
            ));
        }
        for i in 0..10 {
            id += 1;
            v.push(doc(
                id,
                20_031 + i,
                false,
                "한도 상향이 안 된다니 실망입니다",
                &["한도", "상향", "실망"],
            ));
        }
        for i in 0..10 {
            id += 1;
            v.push(doc(
                id,
                20_031 + i,
                true,
                "쉐어링 카드 혜택이 좋아요 앱도 편해요",
                &["쉐어링", "카드", "혜택", "앱"],
            ));
        }
        for i in 0..6 {
            id += 1;
            v.push(doc(
                id,
                20_031 + i,
                false,
                "카드론 이자가 너무 비싸요",
                &["카드론", "이자"],
            ));
        }
        v
    }

    #[test]
    fn improve_promote_and_fix_with_evidence() {
        let docs = corpus();
        let recs = business(&docs, None, &catalogue(), 5);
        let improve = recs
            .iter()
            .find(|r| r.action == Action::Improve && r.subject == "한도")
            .expect("한도 to improve");
        assert!(
            improve.headline.contains("10 negative calls") && improve.headline.contains("up 150%"),
            "{}",
            improve.headline
        );
        assert!(!improve.examples.is_empty());
        let promote = recs
            .iter()
            .find(|r| r.action == Action::Promote && r.product.as_deref() == Some("sharing-card"))
            .expect("sharing card to promote");
        assert!(
            promote.evidence[0].contains("10 positive"),
            "{:?}",
            promote.evidence
        );
        assert!(recs
            .iter()
            .any(|r| r.action == Action::Fix && r.product.as_deref() == Some("loan")));
        // Improve first, then fix, then promote.
        let order: Vec<Action> = recs.iter().map(|r| r.action).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|a| match a {
            Action::Improve => 0,
            Action::Fix => 1,
            Action::Promote => 2,
        });
        assert_eq!(order, sorted);
    }

    #[test]
    fn calls_get_products_of_similar_satisfied_callers() {
        let docs = corpus();
        let caller = doc(99, 20_040, false, "카드 혜택 문의드려요", &["카드", "혜택"]);
        let r = for_call(&caller, &docs, &catalogue(), 3);
        assert!(r.asked.is_empty());
        // The satisfied callers with 카드 and 혜택 mention the sharing card and the app.
        let ids: Vec<&str> = r.suggested.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(ids, ["app", "sharing-card"]);
        assert!(r.suggested[0].1 > 0.0);
        let asking = doc(
            100,
            20_040,
            false,
            "쉐어링카드 한도 문의",
            &["쉐어링", "한도"],
        );
        let r = for_call(&asking, &docs, &catalogue(), 3);
        assert_eq!(r.asked, vec!["sharing-card".to_string()]);
        assert!(r.suggested.iter().all(|(p, _)| p != "sharing-card"));
    }

    #[test]
    fn nothing_to_say_about_nothing() {
        assert!(business(&[], None, &catalogue(), 5).is_empty());
        let lonely = doc(1, 1, true, "네", &[]);
        let r = for_call(&lonely, &[], &catalogue(), 3);
        assert!(r.asked.is_empty() && r.suggested.is_empty());
    }
}
