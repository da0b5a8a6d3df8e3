//! Where insights read and keep their data: the store's calls (or a labelled TSV) turned
//! into the documents the models take, and the computed [`Insights`] kept in the store's
//! `insights` tree. The only part of insights, besides the page's server and the viewers
//! file, that does IO.

use super::keywords::Keywords;
use super::run::{compute_with_neutral, Insights};
use super::Doc;
use super::InsightsConfig;
use crate::audio::Speaker;
use crate::sentiment::Label;
use crate::store::{Day, Store, StoreError};

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

/// A labelled TSV ([`docs_from_tsv`]) that gives no calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsvError {
    #[error("cannot read {}: {source} (expected id<TAB>text<TAB>label lines)", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no id<TAB>text<TAB>label rows with label 0 or 1", path.display())]
    NoRows { path: std::path::PathBuf },
}

/// Labelled texts as calls, one per row of an `id<TAB>text<TAB>label` file (label 1
/// positive, 0 negative; a header line starting with `id` is skipped), at most `max`:
/// for trying the keyword and driver pipeline on text corpora such as NSMC.
pub fn docs_from_tsv(
    path: &std::path::Path,
    keywords: &Keywords,
    max: usize,
) -> Result<Vec<Doc>, TsvError> {
    let text = std::fs::read_to_string(path).map_err(|source| TsvError::Read {
        path: path.to_owned(),
        source,
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
        return Err(TsvError::NoRows {
            path: path.to_owned(),
        });
    }
    Ok(docs)
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
