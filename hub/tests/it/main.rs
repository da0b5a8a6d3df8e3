//! The hub's integration tests, in one binary (one link on a small machine).

mod bench_smoke;
mod cli;
mod common;
mod dashboard;
mod fleet_page;
mod http;
mod pgserver;
mod postgres;
mod registry;
mod restart;
mod storage;
