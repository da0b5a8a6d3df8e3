//! One call's sentiment from its classified utterances: a score per speaker, an overall
//! label, and a trend (did the customer end happier or angrier than they began?).
//!
//! Utterances are positive, negative, neutral (inside the model's neutral band: "네",
//! "잠시만요") or empty (no text). Only the **polar** ones, positive and negative, pull
//! a call towards a side; neutral and empty ones are counted but judge nothing.
//!
//! - A speaker's **score** is the mean probability of "positive" over their polar
//!   utterances; their label is positive from 0.5 up, else negative. A speaker whose
//!   utterances with text were all neutral is neutral, scored by the mean over those.
//! - The **overall** label and score are the customer's when the customer said anything
//!   classifiable (that is whose satisfaction the box measures), else the mixed channel's
//!   of a mono recording, else everyone's. A call with no polar utterance of that basis is
//!   a **neutral** call; one without any utterance with text is `empty`.
//! - The **trend** compares the mean score of that same basis's polar utterances in the
//!   first third of the call with the last third (by utterance midpoint). A change of more
//!   than [`TREND_THRESHOLD`] either way is `improved` or `worsened`, else `steady`; with
//!   no polar utterance in either third there is no trend.
//!
//! Without a neutral band no utterance is neutral, and all of this is the two-way
//! judgement of before.

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
    /// Utterances labelled neutral (absent, so 0, in calls stored by an older build).
    #[serde(default)]
    pub neutral: u32,
    /// Mean positive probability over the polar utterances (over all of them when none is
    /// polar).
    pub score: f32,
    /// Positive or negative by `score`; neutral when no utterance was polar.
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
    /// Utterances of the whole call by label (empty ones count in none). Absent, so 0, in
    /// calls stored by an older build: their speakers' counts hold the same numbers.
    #[serde(default)]
    pub positive_utterances: u32,
    #[serde(default)]
    pub neutral_utterances: u32,
    #[serde(default)]
    pub negative_utterances: u32,
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

/// The score and label of a set of classified utterances: by the polar ones when there
/// are any, else neutral (scored over them all); `None` when the set is empty.
fn judge(utterances: &[&Scored]) -> Option<(f32, Label)> {
    let polar = mean(
        utterances
            .iter()
            .filter(|u| u.sentiment.label.is_polar())
            .map(|u| u.sentiment.p_positive),
    );
    match polar {
        Some(score) => Some((score, label_of(score))),
        None => mean(utterances.iter().map(|u| u.sentiment.p_positive))
            .map(|score| (score, Label::Neutral)),
    }
}

impl CallSentiment {
    /// Summarises the utterances of a call lasting `duration_s`.
    pub fn summarize(model: &str, duration_s: f64, utterances: &[Scored]) -> CallSentiment {
        let classified: Vec<&Scored> = utterances
            .iter()
            .filter(|u| u.sentiment.label != Label::Empty)
            .collect();
        let count = |us: &[&Scored], label: Label| {
            us.iter().filter(|u| u.sentiment.label == label).count() as u32
        };
        let mut speakers = Vec::new();
        for sp in [Speaker::Customer, Speaker::Agent, Speaker::Mono] {
            let mine: Vec<&Scored> = classified
                .iter()
                .copied()
                .filter(|u| u.speaker == sp)
                .collect();
            let Some((score, label)) = judge(&mine) else {
                continue;
            };
            speakers.push(SpeakerSentiment {
                speaker: sp,
                utterances: mine.len() as u32,
                positive: count(&mine, Label::Positive),
                negative: count(&mine, Label::Negative),
                neutral: count(&mine, Label::Neutral),
                score,
                label,
            });
        }
        let truncated_chars = utterances
            .iter()
            .map(|u| u.sentiment.truncated_chars as u64)
            .sum();
        let (positive_utterances, neutral_utterances, negative_utterances) = (
            count(&classified, Label::Positive),
            count(&classified, Label::Neutral),
            count(&classified, Label::Negative),
        );
        let Some(basis) = speakers.first().map(|s| s.speaker) else {
            return CallSentiment {
                model: model.to_owned(),
                overall: Label::Empty,
                score: 0.5,
                basis: Speaker::Customer,
                speakers,
                trend: None,
                truncated_chars,
                positive_utterances,
                neutral_utterances,
                negative_utterances,
            };
        };
        // Customer first, then agent, then mono: a mono call has only Mono; a stereo call
        // with a silent customer falls back to everyone.
        let basis_utts: Vec<&Scored> = classified
            .iter()
            .copied()
            .filter(|u| basis == Speaker::Agent || u.speaker == basis)
            .collect();
        let (score, overall) = judge(&basis_utts).unwrap_or((0.5, Label::Neutral));
        // The trend follows the polar utterances too: a run of "네" is no change of mood.
        let basis_utts: Vec<&Scored> = basis_utts
            .into_iter()
            .filter(|u| u.sentiment.label.is_polar())
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
            overall,
            score,
            basis,
            speakers,
            trend,
            truncated_chars,
            positive_utterances,
            neutral_utterances,
            negative_utterances,
        }
    }

    /// One line for terminals: overall, per speaker, trend.
    pub fn line(&self) -> String {
        let mut s = format!("{} {:.2} (by {})", self.overall, self.score, self.basis);
        for sp in &self.speakers {
            s += &format!(
                "; {} {} {:.2} ({}+ {}-",
                sp.speaker, sp.label, sp.score, sp.positive, sp.negative
            );
            if sp.neutral > 0 {
                s += &format!(" {} neutral", sp.neutral);
            }
            s += ")";
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

    /// An utterance labelled by a model with the neutral band [0.3, 0.7].
    fn b(speaker: Speaker, start: f64, p: f32) -> Scored {
        let mut x = u(speaker, start, p);
        x.sentiment.label = Label::of(p, Some([0.3, 0.7]));
        x
    }

    #[test]
    fn neutral_utterances_do_not_pull_the_call() {
        // An angry customer who also says "네" and "잠시만요" many times: counted in, the
        // neutral utterances (0.55, 0.6) would lift the mean to 0.53, a positive call.
        // Judged on the polar ones, it is negative, and worsened from 0.75 to 0.1.
        let utts = [
            b(Speaker::Customer, 0.0, 0.75),
            b(Speaker::Customer, 3.0, 0.55),
            b(Speaker::Agent, 5.0, 0.95),
            b(Speaker::Customer, 12.0, 0.6),
            b(Speaker::Customer, 22.0, 0.1),
            b(Speaker::Customer, 25.0, 0.6),
            b(Speaker::Customer, 27.0, 0.55),
        ];
        let c = CallSentiment::summarize("m", 30.0, &utts);
        assert_eq!(c.basis, Speaker::Customer);
        assert_eq!(c.overall, Label::Negative);
        assert!((c.score - (0.75 + 0.1) / 2.0).abs() < 1e-6, "{}", c.score);
        let t = c.trend.unwrap();
        assert!(
            (t.first - 0.75).abs() < 1e-6 && (t.last - 0.1).abs() < 1e-6,
            "{t:?}"
        );
        assert_eq!(t.direction, Direction::Worsened);
        let customer = &c.speakers[0];
        assert_eq!(
            (
                customer.utterances,
                customer.positive,
                customer.neutral,
                customer.negative
            ),
            (6, 1, 4, 1)
        );
        assert_eq!(customer.label, Label::Negative);
        assert_eq!(
            (
                c.positive_utterances,
                c.neutral_utterances,
                c.negative_utterances
            ),
            (2, 4, 1)
        );
        assert!(c.line().contains("(1+ 1- 4 neutral)"), "{}", c.line());
    }

    #[test]
    fn a_call_without_polar_utterances_is_neutral() {
        // The customer said only neutral things; the agent's politeness does not decide.
        let utts = [
            b(Speaker::Agent, 0.0, 0.9),
            b(Speaker::Customer, 3.0, 0.5),
            b(Speaker::Customer, 20.0, 0.65),
        ];
        let c = CallSentiment::summarize("m", 30.0, &utts);
        assert_eq!(c.basis, Speaker::Customer);
        assert_eq!(c.overall, Label::Neutral);
        assert!(
            (c.score - 0.575).abs() < 1e-6,
            "the probability is still reported"
        );
        assert!(c.trend.is_none(), "no polar utterance in either third");
        assert_eq!(c.speakers[0].label, Label::Neutral);
        assert_eq!(c.speakers[1].label, Label::Positive);
        // With an empty utterance as well, it is still neutral, not empty.
        let mut e = u(Speaker::Customer, 25.0, 0.5);
        e.sentiment = Sentiment::EMPTY;
        let c = CallSentiment::summarize("m", 30.0, &[b(Speaker::Mono, 1.0, 0.4), e]);
        assert_eq!((c.basis, c.overall), (Speaker::Mono, Label::Neutral));
        assert_eq!(
            (
                c.positive_utterances,
                c.neutral_utterances,
                c.negative_utterances
            ),
            (0, 1, 0)
        );
        // Without a band the same probabilities are polar again: the old judgement.
        let utts: Vec<Scored> = utts
            .iter()
            .map(|x| u(x.speaker, x.start_s, x.sentiment.p_positive))
            .collect();
        let c = CallSentiment::summarize("m", 30.0, &utts);
        assert_eq!(c.overall, Label::Positive);
        assert_eq!(c.neutral_utterances, 0);
    }

    #[test]
    fn summaries_stored_before_the_neutral_class_still_read() {
        // A summary as the build before the neutral class stored it (no neutral counts).
        let old = r#"{"model":"sentiment-ko@ba9876543210","overall":"negative","score":0.38,"basis":"customer","speakers":[{"speaker":"customer","utterances":2,"positive":1,"negative":1,"score":0.38,"label":"negative"}],"trend":null,"truncated_chars":0}"#;
        let c: CallSentiment = serde_json::from_str(old).unwrap();
        assert_eq!(c.overall, Label::Negative);
        assert_eq!(c.speakers[0].neutral, 0);
        assert_eq!(c.neutral_utterances, 0);
    }
}
