//! Sentiment: the shared Korean tokenizer and the int8 text classifier run by tract.
//!
//! - [`tokenizer`]: normalisation and the two id sequences the model reads; the host
//!   tool trains with this same code.
//! - [`engine`]: loading the ONNX graph and classifying texts.
//! - [`summary`]: per-speaker scores, overall label and trend of one call.

pub mod engine;
pub mod summary;
pub mod tokenizer;

pub use engine::{Label, Sentiment, SentimentEngine, SentimentError};
pub use summary::{CallSentiment, Direction, Scored, SpeakerSentiment, Trend};
pub use tokenizer::{Encoded, InvalidTokenizer, Tokenizer, TokenizerData};
