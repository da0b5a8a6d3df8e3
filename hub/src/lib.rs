//! `sangdam-hub`: receives the batches that sangdam boxes upload, checks who sent them,
//! stores them once, acknowledges them, and shows the whole fleet on one page.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sangdam_hub::{serve, HubConfig, Registry, SledStorage};
//!
//! let registry = Registry::load("registry.toml".as_ref())?;
//! let storage = Arc::new(SledStorage::open("hub-data".as_ref())?);
//! let hub = serve(HubConfig::new("127.0.0.1:8470".parse()?), registry, storage)?;
//! println!("listening on http://{}", hub.addr());
//! # hub.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See the README for the HTTP contract (which status for which failure) and how the hub
//! would scale past one machine.

pub mod answer;
pub mod bench;
pub mod dashboard;
pub mod fleet;
pub mod http;
pub mod pagebench;
pub mod pg;
pub mod registry;
pub mod server;
pub mod storage;
pub mod viewers;

pub use answer::{answer, Answer};
pub use pg::PgStorage;
pub use registry::{add_device, Device, Registry, RegistryError};
pub use server::{serve, HubConfig, HubError, HubStats, RunningHub};
pub use storage::{Record, SledStorage, Storage, StorageError, Stored};
pub use viewers::{add_viewer, ViewerError, Viewers};
