//! One call's sentiment from its classified utterances: a score per speaker, an overall
//! label, and a trend (did the customer end happier or angrier than they began?).
//!
//! - A speaker's **score** is the mean probability of "positive" over their utterances
//!   that had text; their label is positive from 0.5 up.
//! - The **overall** label and score are the customer's when the customer said anything
//!   classifiable (that is whose satisfaction the box measures), else the mixed channel's
//!   of a mono recording, else everyone's.
//! - The **trend** compares the mean score of that same speaker's utterances in the first
//!   third of the call with the last third (by utterance midpoint). A change of more than
//!   [`TREND_THRESHOLD`] either way is `improved` or `worsened`, else `steady`; with no
//!   utterance in either third there is no trend.

use serde::{Deserialize, Serialize};

use super::engine::{Label, Sentiment};
use crate::audio::Speaker;

/// Change of mean positive probability between the first and last third that counts as
/// a trend.
pub const TREND_THRESHOLD: f32 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Improved,
    Steady,
    Worsened,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Improved => "improved",
            Direction::Steady => "steady",
            Direction::Worsened => "worsened",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Mean positive probability in the first third of the call.
    pub first: f32,
    /// ... and in the last third.
    pub last: f32,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerSentiment {
    pub speaker: Speaker,
    /// Utterances with text (the ones that were classified).
    pub utterances: u32,
    pub positive: u32,
    pub negative: u32,
    /// Mean positive probability.
    pub score: f32,
    pub label: Label,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSentiment {
    /// Which sentiment model judged it: manifest name and hash prefix.
    pub model: String,
    pub overall: Label,
    pub score: f32,
    /// Whose utterances decide `overall` and `trend`.
    pub basis: Speaker,
    pub speakers: Vec<SpeakerSentiment>,
    pub trend: Option<Trend>,
    /// Characters cut from over-long utterances before classification.
    #[serde(default)]
    pub truncated_chars: u64,
}

/// One classified utterance as the summary sees it.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
    pub sentiment: Sentiment,
}

fn mean(xs: impl Iterator<Item = f32>) -> Option<f32> {
    let (sum, n) = xs.fold((0.0f32, 0u32), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f32)
}

fn label_of(score: f32) -> Label {
    if score >= 0.5 {
        Label::Positive
    } else {
        Label::Negative
    }
}

impl CallSentiment {
    /// Summarises the utterances of a call lasting `duration_s`.
    pub fn summarize(model: &str, duration_s: f64, utterances: &[Scored]) -> CallSentiment {
        let classified: Vec<&Scored> = utterances
            .iter()
            .filter(|u| u.sentiment.label != Label::Empty)
            .collect();
        let mut speakers = Vec::new();
        for sp in [Speaker::Customer, Speaker::Agent, Speaker::Mono] {
            let mine: Vec<&&Scored> = classified.iter().filter(|u| u.speaker == sp).collect();
            let Some(score) = mean(mine.iter().map(|u| u.sentiment.p_positive)) else {
                continue;
            };
            speakers.push(SpeakerSentiment {
                speaker: sp,
                utterances: mine.len() as u32,
                positive: mine
                    .iter()
                    .filter(|u| u.sentiment.label == Label::Positive)
                    .count() as u32,
                negative: mine
                    .iter()
                    .filter(|u| u.sentiment.label == Label::Negative)
                    .count() as u32,
                score,
                label: label_of(score),
            });
        }
        let truncated_chars = utterances
            .iter()
            .map(|u| u.sentiment.truncated_chars as u64)
            .sum();
        let Some(basis) = speakers.first().map(|s| s.speaker) else {
            return CallSentiment {
                model: model.to_owned(),
                overall: Label::Empty,
                score: 0.5,
                basis: Speaker::Customer,
                speakers,
                trend: None,
                truncated_chars,
            };
        };
        // Customer first, then agent, then mono: a mono call has only Mono; a stereo call
        // with a silent customer falls back to everyone.
        let (basis, score) = if basis == Speaker::Agent {
            let all = mean(classified.iter().map(|u| u.sentiment.p_positive)).unwrap_or(0.5);
            (Speaker::Agent, all)
        } else {
            (basis, speakers[0].score)
        };
        let basis_utts: Vec<&&Scored> = classified
            .iter()
            .filter(|u| basis == Speaker::Agent || u.speaker == basis)
            .collect();
        let third = duration_s / 3.0;
        let mid = |u: &Scored| (u.start_s + u.end_s) / 2.0;
        let first = mean(
            basis_utts
                .iter()
                .filter(|u| mid(u) < third)
                .map(|u| u.sentiment.p_positive),
        );
        let last = mean(
            basis_utts
                .iter()
                .filter(|u| mid(u) >= duration_s - third)
                .map(|u| u.sentiment.p_positive),
        );
        let trend = match (first, last) {
            (Some(first), Some(last)) if duration_s > 0.0 => Some(Trend {
                first,
                last,
                direction: if last - first > TREND_THRESHOLD {
                    Direction::Improved
                } else if first - last > TREND_THRESHOLD {
                    Direction::Worsened
                } else {
                    Direction::Steady
                },
            }),
            _ => None,
        };
        CallSentiment {
            model: model.to_owned(),
            overall: label_of(score),
            score,
            basis,
            speakers,
            trend,
            truncated_chars,
        }
    }

    /// One line for terminals: overall, per speaker, trend.
    pub fn line(&self) -> String {
        let mut s = format!("{} {:.2} (by {})", self.overall, self.score, self.basis);
        for sp in &self.speakers {
            s += &format!(
                "; {} {} {:.2} ({}+ {}-)",
                sp.speaker, sp.label, sp.score, sp.positive, sp.negative
            );
        }
        match &self.trend {
            Some(t) => s += &format!("; trend {} ({:.2} -> {:.2})", t.direction, t.first, t.last),
            None => s += "; trend n/a",
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(speaker: Speaker, start: f64, p: f32) -> Scored {
        Scored {
            speaker,
            start_s: start,
            end_s: start + 2.0,
            sentiment: Sentiment {
                label: label_of(p),
                p_positive: p,
                truncated_chars: 0,
            },
        }
    }

    #[test]
    fn customer_decides_and_trend_follows_the_customer() {
        let utts = [
            u(Speaker::Customer, 0.0, 0.1),
            u(Speaker::Agent, 3.0, 0.9),
            u(Speaker::Customer, 10.0, 0.3),
            u(Speaker::Agent, 20.0, 0.9),
            u(Speaker::Customer, 24.0, 0.95),
        ];
        let c = CallSentiment::summarize("m", 30.0, &utts);
        assert_eq!(c.basis, Speaker::Customer);
        assert!((c.score - (0.1 + 0.3 + 0.95) / 3.0).abs() < 1e-6);
        assert_eq!(c.overall, Label::Negative);
        let t = c.trend.unwrap();
        assert_eq!(t.direction, Direction::Improved);
        assert!((t.first - 0.1).abs() < 1e-6 && (t.last - 0.95).abs() < 1e-6);
        let agent = c
            .speakers
            .iter()
            .find(|s| s.speaker == Speaker::Agent)
            .unwrap();
        assert_eq!(
            (agent.positive, agent.negative, agent.label),
            (2, 0, Label::Positive)
        );
    }

    #[test]
    fn worsening_and_missing_thirds() {
        let utts = [u(Speaker::Mono, 1.0, 0.8), u(Speaker::Mono, 50.0, 0.2)];
        let c = CallSentiment::summarize("m", 60.0, &utts);
        assert_eq!(c.basis, Speaker::Mono);
        assert_eq!(c.trend.unwrap().direction, Direction::Worsened);
        let c = CallSentiment::summarize("m", 60.0, &[u(Speaker::Mono, 25.0, 0.8)]);
        assert!(c.trend.is_none(), "only a middle utterance: no trend");
        let c = CallSentiment::summarize(
            "m",
            60.0,
            &[u(Speaker::Mono, 1.0, 0.6), u(Speaker::Mono, 55.0, 0.7)],
        );
        assert_eq!(c.trend.unwrap().direction, Direction::Steady);
    }

    #[test]
    fn empty_utterances_do_not_count() {
        let mut e = u(Speaker::Customer, 0.0, 0.5);
        e.sentiment = Sentiment::EMPTY;
        let c = CallSentiment::summarize("m", 10.0, &[e]);
        assert_eq!(c.overall, Label::Empty);
        assert!(c.speakers.is_empty());
        let c = CallSentiment::summarize("m", 10.0, &[e, u(Speaker::Agent, 5.0, 0.2)]);
        assert_eq!(
            c.basis,
            Speaker::Agent,
            "a silent customer falls back to everyone"
        );
        assert_eq!(c.overall, Label::Negative);
    }
}
