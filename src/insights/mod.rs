//! Insights and recommendations: what customers complain about and praise, which topics
//! and products drive satisfaction, and what to do about it. Everything runs on the box,
//! offline, over the stored transcripts; nothing here does IO except [`source`] (the
//! store's calls in, the computed insights kept), [`report::serve`] and the [`viewers`]
//! file.
//!
//! - [`keywords`]: Korean keywords (particles and endings stripped, stop words removed).
//! - [`stats`]: keyword counts per period and sentiment, and the keywords most
//!   over-represented in negative vs positive calls. Everything that splits by sentiment
//!   uses the polar calls; neutral calls are counted beside them.
//! - [`drivers`]: TF-IDF over calls, a decision tree and a gradient-boosted ensemble that
//!   predict call sentiment; their top features by gain are the drivers.
//! - [`recommend`]: the product catalogue, business recommendations and per-call ones.
//! - [`charts`]: SVG charts (bars, word clouds, lines) with Korean text.
//! - [`run`]: the whole computation, documents in, [`run::Insights`] out.
//! - [`source`]: documents from the store (or a TSV), and the insights kept in it.
//! - [`render`]: the text of `sangdam insights` and `recommend`, and the report page.
//! - [`report`]: the self-contained HTML page and its read-only local server, behind a
//!   login.
//! - [`viewers`]: who may log in to that server (argon2id hashes in a private file).

pub mod charts;
pub mod config;
pub mod drivers;
pub mod keywords;
pub mod recommend;
pub mod render;
pub mod report;
pub mod run;
pub mod source;
pub mod stats;
pub mod viewers;

pub use config::InsightsConfig;

/// One polar call as the insight models see it. Neutral calls (no polar utterance of
/// the speaker who decides the call) are no `Doc`: they pull towards neither side, so
/// they are only counted ([`run::load_docs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Call id (hex, or any stable key).
    pub id: String,
    /// Unix seconds of the call (newest first when calls must be left out).
    pub at: u64,
    /// The day of `at` in the store's time zone (for periods).
    pub day: crate::store::Day,
    /// Keywords of the call's customer-side text (or the whole call when mono), in order,
    /// repeated as often as they occur; from its polar utterances only when they were
    /// labelled (a neutral "카드 번호 불러 드릴게요" in a complaint is no complaint about
    /// cards).
    pub keywords: Vec<String>,
    /// The call's overall sentiment: true positive, false negative.
    pub positive: bool,
    /// The utterance texts, for examples.
    pub texts: Vec<String>,
}

/// One product of the catalogue (config `[[insights.products]]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    /// The name shown in recommendations.
    pub name: String,
    /// Other ways callers say it (spaces and case are ignored when matching).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub category: String,
}

/// The built-in catalogue: example products of the three domains the seed's calls come
/// from (cards and finance, telecom, education). Replace it in the config.
pub fn default_catalogue() -> Vec<Product> {
    let p = |id: &str, name: &str, aliases: &[&str], category: &str| Product {
        id: id.to_owned(),
        name: name.to_owned(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        category: category.to_owned(),
    };
    vec![
        p(
            "sharing-card",
            "쉐어링 카드",
            &["쉐어링카드", "셰어링 카드"],
            "card",
        ),
        p("check-card", "체크카드", &["체크 카드"], "card"),
        p("card-loan", "카드론", &["카드 론", "장기카드대출"], "loan"),
        p(
            "mobile-app",
            "모바일 앱",
            &["앱", "어플", "애플리케이션"],
            "digital",
        ),
        p(
            "unlimited-plan",
            "무제한 요금제",
            &["무제한요금제", "무제한"],
            "telecom",
        ),
        p(
            "family-bundle",
            "가족 결합",
            &["가족결합", "결합 할인"],
            "telecom",
        ),
        p("5g-plan", "5G 요금제", &["5G", "오지"], "telecom"),
        p(
            "online-course",
            "온라인 강의",
            &["온라인강의", "인강"],
            "education",
        ),
        p("tutoring", "1:1 과외", &["과외", "일대일"], "education"),
    ]
}
