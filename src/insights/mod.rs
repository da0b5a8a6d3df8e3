//! Insights and recommendations: what customers complain about and praise, which topics
//! and products drive satisfaction, and what to do about it. Everything runs on the box,
//! offline, over the stored transcripts; nothing here does IO except [`report::serve`].
//!
//! - [`keywords`]: Korean keywords (particles and endings stripped, stop words removed).
//! - [`stats`]: keyword counts per period and sentiment, and the keywords most
//!   over-represented in negative vs positive calls.
//! - [`drivers`]: TF-IDF over calls, a decision tree and a gradient-boosted ensemble that
//!   predict call sentiment; their top features by gain are the drivers.
//! - [`recommend`]: the product catalogue, business recommendations and per-call ones.
//! - [`charts`]: SVG charts (bars, word clouds, lines) with Korean text.
//! - [`report`]: the self-contained HTML page and its read-only local server.

pub mod charts;
pub mod drivers;
pub mod keywords;
pub mod report;
pub mod recommend;
pub mod stats;

/// One call as the insight models see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Call id (hex, or any stable key).
    pub id: String,
    /// Unix seconds of the call (for periods).
    pub at: u64,
    /// Keywords of the call's customer-side text (or the whole call when mono), in order,
    /// repeated as often as they occur.
    pub keywords: Vec<String>,
    /// The call's overall sentiment: true positive, false negative.
    pub positive: bool,
    /// The utterance texts, for examples.
    pub texts: Vec<String>,
}
