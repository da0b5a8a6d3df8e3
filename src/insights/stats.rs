//! Keyword statistics per period and sentiment.
