//! Keyword statistics per period and sentiment.
//!
//! For a set of polar calls (positive or negative overall: neutral calls belong to
//! neither side and are not [`Doc`]s, see [`super::run::load_docs`]): the most frequent
//! keywords overall, in negative calls and in positive calls, and the keywords most
//! over-represented on each side. Over-
//! representation is the log-odds ratio with an informative Dirichlet prior (Monroe,
//! Colaresi and Quinn, "Fightin' Words", 2008): the prior is the keyword's share of all
//! mentions in the period, with [`PRIOR_FRACTION`] of the period's mentions as
//! pseudo-counts, which keeps rare words from topping the list on one lucky occurrence. Each row carries the raw counts next
//! to the z-score so a reader can judge it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Doc;
use crate::store::Day;

/// Pseudo-counts of the prior in the log-odds ratio, as a fraction of all mentions.
pub const PRIOR_FRACTION: f64 = 0.1;
/// Keywords with fewer occurrences in the period are not contrasted.
pub const MIN_CONTRAST_COUNT: u64 = 3;

/// A period of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    /// One day (in the store's time zone).
    Day(Day),
    /// Seven days ending with (and including) this day.
    Week(Day),
    /// `days` days ending with (and including) `end`.
    Days { end: Day, days: u32 },
    /// Everything stored.
    All,
}

impl Period {
    pub fn contains(&self, d: Day) -> bool {
        match *self {
            Period::Day(day) => d == day,
            Period::Week(end) => d.0 <= end.0 && d.0 + 7 > end.0,
            Period::Days { end, days } => d.0 <= end.0 && d.0 + days > end.0,
            Period::All => true,
        }
    }

    pub fn label(&self) -> String {
        match *self {
            Period::Day(d) => format!("day {d}"),
            Period::Week(end) => format!("week {}..{end}", Day(end.0.saturating_sub(6))),
            Period::Days { end, days } => format!(
                "{days} days {}..{end}",
                Day(end.0.saturating_sub(days.saturating_sub(1)))
            ),
            Period::All => "all".to_owned(),
        }
    }

    /// The latest day, the week ending with it, and all, for calls up to day `d`.
    pub fn standard(d: Day) -> [Period; 3] {
        [Period::Day(d), Period::Week(d), Period::All]
    }
}

/// How often a keyword occurs: occurrences and calls that contain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordCount {
    pub keyword: String,
    pub count: u64,
    pub calls: u64,
}

/// A keyword's use in negative vs positive calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    pub keyword: String,
    pub negative_count: u64,
    pub positive_count: u64,
    pub negative_calls: u64,
    pub positive_calls: u64,
    /// Log-odds ratio, negative over positive (above 0: more negative).
    pub log_odds: f64,
    /// The log-odds ratio over its standard deviation.
    pub z: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordStats {
    pub period: Period,
    /// Polar calls in the period: `negative_calls + positive_calls`.
    pub calls: u64,
    pub negative_calls: u64,
    pub positive_calls: u64,
    /// Neutral calls in the period, counted beside the split (their keywords are in no
    /// list). [`keyword_stats`] sees polar calls only and leaves it 0;
    /// [`super::run::compute_with_neutral`] fills it in.
    #[serde(default)]
    pub neutral_calls: u64,
    pub top: Vec<KeywordCount>,
    pub top_negative: Vec<KeywordCount>,
    pub top_positive: Vec<KeywordCount>,
    /// Most over-represented in negative calls first (z > 0 only).
    pub over_negative: Vec<Contrast>,
    /// Most over-represented in positive calls first (z < 0 only).
    pub over_positive: Vec<Contrast>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    neg_count: u64,
    pos_count: u64,
    neg_calls: u64,
    pos_calls: u64,
}

fn top_by(
    tallies: &HashMap<&str, Tally>,
    n: usize,
    pick: impl Fn(&Tally) -> (u64, u64),
) -> Vec<KeywordCount> {
    let mut v: Vec<KeywordCount> = tallies
        .iter()
        .map(|(k, t)| {
            let (count, calls) = pick(t);
            KeywordCount {
                keyword: (*k).to_owned(),
                count,
                calls,
            }
        })
        .filter(|k| k.count > 0)
        .collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.calls.cmp(&a.calls))
            .then(a.keyword.cmp(&b.keyword))
    });
    v.truncate(n);
    v
}

/// Statistics of the calls in `period`, `n` rows per list.
pub fn keyword_stats(docs: &[Doc], period: Period, n: usize) -> KeywordStats {
    let mut tallies: HashMap<&str, Tally> = HashMap::new();
    let (mut calls, mut neg_calls, mut pos_calls) = (0u64, 0u64, 0u64);
    let mut seen: Vec<&str> = Vec::new();
    for d in docs.iter().filter(|d| period.contains(d.day)) {
        calls += 1;
        if d.positive {
            pos_calls += 1;
        } else {
            neg_calls += 1;
        }
        seen.clear();
        for k in &d.keywords {
            let t = tallies.entry(k.as_str()).or_default();
            if d.positive {
                t.pos_count += 1;
            } else {
                t.neg_count += 1;
            }
            if !seen.contains(&k.as_str()) {
                seen.push(k.as_str());
                if d.positive {
                    t.pos_calls += 1;
                } else {
                    t.neg_calls += 1;
                }
            }
        }
    }
    let top = top_by(&tallies, n, |t| {
        (t.neg_count + t.pos_count, t.neg_calls + t.pos_calls)
    });
    let top_negative = top_by(&tallies, n, |t| (t.neg_count, t.neg_calls));
    let top_positive = top_by(&tallies, n, |t| (t.pos_count, t.pos_calls));

    let n_neg: u64 = tallies.values().map(|t| t.neg_count).sum();
    let n_pos: u64 = tallies.values().map(|t| t.pos_count).sum();
    let total = (n_neg + n_pos).max(1) as f64;
    let prior = PRIOR_FRACTION * total;
    let mut contrasts: Vec<Contrast> = tallies
        .iter()
        .filter(|(_, t)| t.neg_count + t.pos_count >= MIN_CONTRAST_COUNT)
        .map(|(k, t)| {
            let alpha = prior * (t.neg_count + t.pos_count) as f64 / total;
            let odds = |y: u64, n: u64| {
                let y = y as f64 + alpha;
                let rest = (n as f64 + prior - y).max(1e-9);
                (y / rest).ln()
            };
            let delta = odds(t.neg_count, n_neg) - odds(t.pos_count, n_pos);
            let var = 1.0 / (t.neg_count as f64 + alpha) + 1.0 / (t.pos_count as f64 + alpha);
            Contrast {
                keyword: (*k).to_owned(),
                negative_count: t.neg_count,
                positive_count: t.pos_count,
                negative_calls: t.neg_calls,
                positive_calls: t.pos_calls,
                log_odds: delta,
                z: delta / var.sqrt(),
            }
        })
        .collect();
    contrasts.sort_by(|a, b| b.z.total_cmp(&a.z).then(a.keyword.cmp(&b.keyword)));
    let over_negative: Vec<Contrast> = contrasts
        .iter()
        .filter(|c| c.z > 0.0)
        .take(n)
        .cloned()
        .collect();
    let over_positive: Vec<Contrast> = contrasts
        .iter()
        .rev()
        .filter(|c| c.z < 0.0)
        .take(n)
        .cloned()
        .collect();
    KeywordStats {
        period,
        calls,
        negative_calls: neg_calls,
        positive_calls: pos_calls,
        neutral_calls: 0,
        top,
        top_negative,
        top_positive,
        over_negative,
        over_positive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(at: u64, positive: bool, words: &[&str]) -> Doc {
        Doc {
            id: format!("{at}"),
            at,
            day: Day::of_unix(at, &crate::store::TimeZone::UTC),
            keywords: words.iter().map(|w| w.to_string()).collect(),
            positive,
            texts: vec![words.join(" ")],
        }
    }

    fn corpus() -> Vec<Doc> {
        let day = 86_400;
        let mut v = Vec::new();
        for i in 0..40 {
            // 한도 mostly in negative calls, 앱 mostly in positive ones, 카드 in both.
            let neg = i % 2 == 0;
            let mut w = vec!["카드", "카드"];
            if neg || i % 10 == 1 {
                w.push("한도");
            }
            if !neg || i % 10 == 0 {
                w.push("앱");
            }
            if i == 3 {
                w.push("희귀어");
            }
            v.push(doc(20_000 * day + (i % 8) * day, !neg, &w));
        }
        v
    }

    #[test]
    fn counts_and_contrasts_by_sentiment() {
        let docs = corpus();
        let s = keyword_stats(&docs, Period::All, 10);
        assert_eq!(s.calls, 40);
        assert_eq!((s.negative_calls, s.positive_calls), (20, 20));
        assert_eq!(s.top[0].keyword, "카드");
        assert_eq!((s.top[0].count, s.top[0].calls), (80, 40));
        assert_eq!(s.top_negative[1].keyword, "한도");
        assert_eq!(s.over_negative[0].keyword, "한도");
        assert_eq!(s.over_negative[0].negative_calls, 20);
        assert_eq!(s.over_negative[0].positive_calls, 4);
        assert_eq!(s.over_positive[0].keyword, "앱");
        assert!(s.over_positive[0].z < -2.0, "{:?}", s.over_positive[0]);
        // A one-off word is too rare to contrast; 카드 is balanced and sits near 0.
        assert!(s.over_negative.iter().all(|c| c.keyword != "희귀어"));
        let card = s
            .over_negative
            .iter()
            .chain(&s.over_positive)
            .find(|c| c.keyword == "카드")
            .unwrap();
        assert!(card.z.abs() < 1.0, "{card:?}");
    }

    #[test]
    fn periods_select_their_calls() {
        let docs = corpus();
        let latest = docs.iter().map(|d| d.day).max().unwrap();
        let [day, week, all] = Period::standard(latest);
        assert_eq!(keyword_stats(&docs, day, 5).calls, 5);
        assert_eq!(keyword_stats(&docs, week, 5).calls, 35);
        assert_eq!(keyword_stats(&docs, all, 5).calls, 40);
        assert!(week.label().starts_with("week "));
    }

    #[test]
    fn empty_input_gives_empty_lists() {
        let s = keyword_stats(&[], Period::All, 10);
        assert_eq!(s.calls, 0);
        assert!(s.top.is_empty() && s.over_negative.is_empty() && s.over_positive.is_empty());
    }
}
