//! Talk time per speaker, silence, overlaps and interruptions of one call, from its
//! utterances' times. IO-free; used for every stored call.

use serde::{Deserialize, Serialize};

use crate::audio::Speaker;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TalkStats {
    /// Seconds of speech per side (`mono_s` for one-channel lines, where sides are mixed).
    pub agent_s: f64,
    pub customer_s: f64,
    pub mono_s: f64,
    /// Seconds in which nobody speaks.
    pub silence_s: f64,
    /// Seconds in which both sides speak at once (two-channel lines only).
    pub overlap_s: f64,
    /// Utterances of the agent that start while the customer is speaking, and the other
    /// way round (two-channel lines only).
    pub agent_interruptions: u32,
    pub customer_interruptions: u32,
}

/// An utterance only needs its side and its span.
pub trait Span {
    fn speaker(&self) -> Speaker;
    fn span(&self) -> (f64, f64);
}

/// Merges overlapping spans (sorted by start) and returns their total length.
fn union_len(mut spans: Vec<(f64, f64)>) -> (f64, Vec<(f64, f64)>) {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (s, e) in spans {
        if e <= s {
            continue;
        }
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    (merged.iter().map(|(s, e)| e - s).sum(), merged)
}

fn intersection_len(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let (mut i, mut j, mut total) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if e > s {
            total += e - s;
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// Whether `t` falls strictly inside one of the merged spans.
fn inside(spans: &[(f64, f64)], t: f64) -> bool {
    spans.iter().any(|&(s, e)| t > s && t < e)
}

/// The statistics of a call of `duration_s` seconds.
pub fn talk_stats<U: Span>(utterances: &[U], duration_s: f64) -> TalkStats {
    let side = |who: Speaker| -> Vec<(f64, f64)> {
        utterances
            .iter()
            .filter(|u| u.speaker() == who)
            .map(|u| u.span())
            .collect()
    };
    let (agent_s, agent) = union_len(side(Speaker::Agent));
    let (customer_s, customer) = union_len(side(Speaker::Customer));
    let (mono_s, _) = union_len(side(Speaker::Mono));
    let (any_s, _) = union_len(utterances.iter().map(|u| u.span()).collect());
    let agent_interruptions = agent.iter().filter(|(s, _)| inside(&customer, *s)).count() as u32;
    let customer_interruptions = customer.iter().filter(|(s, _)| inside(&agent, *s)).count() as u32;
    TalkStats {
        agent_s,
        customer_s,
        mono_s,
        silence_s: (duration_s - any_s).max(0.0),
        overlap_s: intersection_len(&agent, &customer),
        agent_interruptions,
        customer_interruptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct U(Speaker, f64, f64);
    impl Span for U {
        fn speaker(&self) -> Speaker {
            self.0
        }
        fn span(&self) -> (f64, f64) {
            (self.1, self.2)
        }
    }

    #[test]
    fn stereo_call() {
        use Speaker::*;
        let us = [
            U(Agent, 0.0, 3.0),
            U(Customer, 2.5, 6.0), // interrupts the agent: 0.5 s overlap
            U(Agent, 7.0, 8.0),
            U(Agent, 9.0, 12.0),
            U(Customer, 10.0, 11.0), // inside the agent's turn: 1 s overlap
        ];
        let t = talk_stats(&us, 15.0);
        assert!((t.agent_s - 7.0).abs() < 1e-9, "{t:?}");
        assert!((t.customer_s - 4.5).abs() < 1e-9);
        assert!((t.overlap_s - 1.5).abs() < 1e-9);
        // Speech covers 0-6, 7-8, 9-12: 10 s of 15.
        assert!((t.silence_s - 5.0).abs() < 1e-9);
        assert_eq!(t.customer_interruptions, 2);
        assert_eq!(t.agent_interruptions, 0);
        assert_eq!(t.mono_s, 0.0);
    }

    #[test]
    fn mono_call_has_no_overlaps() {
        let us = [U(Speaker::Mono, 1.0, 2.0), U(Speaker::Mono, 1.5, 4.0)];
        let t = talk_stats(&us, 5.0);
        assert!((t.mono_s - 3.0).abs() < 1e-9);
        assert!((t.silence_s - 2.0).abs() < 1e-9);
        assert_eq!(t.overlap_s, 0.0);
        assert_eq!(t.agent_interruptions + t.customer_interruptions, 0);
        let empty: [U; 0] = [];
        assert_eq!(talk_stats(&empty, 3.0).silence_s, 3.0);
    }
}
