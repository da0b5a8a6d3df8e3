//! All integration tests in one binary (one link step instead of many).

mod asr;
mod audio;
mod board;
mod cli;
mod crash;
mod damage;
mod diskfull;
mod insights;
mod limits;
mod live;
mod redact;
mod report;
mod security;
mod sentiment;
mod shipped;
mod store;
mod support;
mod sync;
mod vad;
