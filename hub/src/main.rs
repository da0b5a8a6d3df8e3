//! `sangdam-hub serve | add-device | bench`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sangdam_hub::bench::{self, BenchConfig};
use sangdam_hub::{serve, HubConfig, Registry, SledStorage, Storage};

#[derive(Parser)]
#[command(
    name = "sangdam-hub",
    version,
    about = "Receives sangdam boxes' batches, verifies and stores them, and serves the fleet page"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve uploads (POST /v1/batches), the fleet page (GET /) and /healthz.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8470", env = "SANGDAM_HUB_ADDR")]
        addr: SocketAddr,
        /// Folder of the batch store (sled); created if missing.
        #[arg(long, env = "SANGDAM_HUB_DATA")]
        data: PathBuf,
        /// Device registry (TOML, [[device]] id/key/branch). Read at start: restart the hub
        /// after adding a device.
        #[arg(long, default_value = "registry.toml", env = "SANGDAM_HUB_REGISTRY")]
        registry: PathBuf,
        /// Connection threads (connections served at once).
        #[arg(long, default_value_t = 128)]
        threads: usize,
    },
    /// Register a box: generates its key, appends it to the registry and prints the key
    /// once (put it in the box's sync.key), or writes it to --key-out.
    AddDevice {
        /// The box's id (its sync.device_id), e.g. busan-03.
        id: String,
        /// The branch it reports for, e.g. "부산 3지점".
        #[arg(long)]
        branch: String,
        #[arg(long, default_value = "registry.toml", env = "SANGDAM_HUB_REGISTRY")]
        registry: PathBuf,
        /// Write the key to this new file (mode 0600) instead of printing it: the box's
        /// sync.key_file (board/INSTALL.md).
        #[arg(long, value_name = "FILE")]
        key_out: Option<PathBuf>,
    },
    /// Load bench on loopback: simulated boxes upload to an in-process hub with a fresh
    /// store; prints throughput and latency.
    Bench {
        #[arg(long, default_value_t = 1000)]
        boxes: usize,
        #[arg(long, default_value_t = 10)]
        batches_per_box: u64,
        /// Client threads (each with its own keep-alive connection).
        #[arg(long, default_value_t = 32)]
        threads: usize,
        /// The hub's connection threads (at least --threads + 4).
        #[arg(long, default_value_t = 128)]
        hub_threads: usize,
        /// Send a duplicate after every N-th upload (0: none).
        #[arg(long, default_value_t = 50)]
        duplicate_every: u64,
        /// Folder to make the temporary store in (default: the system's temp folder).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            addr,
            data,
            registry,
            threads,
        } => {
            init_logging("info");
            run_serve(addr, data, registry, threads)
        }
        Command::AddDevice {
            id,
            branch,
            registry,
            key_out,
        } => add_device(&id, &branch, &registry, key_out.as_deref()),
        Command::Bench {
            boxes,
            batches_per_box,
            threads,
            hub_threads,
            duplicate_every,
            data,
        } => {
            init_logging("error");
            run_bench(BenchConfig {
                boxes,
                batches_per_box,
                client_threads: threads,
                hub_threads,
                duplicate_every,
                data_parent: data,
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sangdam-hub: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_serve(
    addr: SocketAddr,
    data: PathBuf,
    registry_path: PathBuf,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    let registry = Registry::load(&registry_path)?;
    if registry.is_empty() {
        tracing::warn!(
            registry = %registry_path.display(),
            "the registry has no devices: every upload will be refused (add one with `sangdam-hub add-device ID --branch NAME`)"
        );
    }
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let storage = Arc::new(SledStorage::open(&data)?);
    let stored = storage.count()?;
    let hub = serve(
        HubConfig {
            threads,
            ..HubConfig::new(addr)
        },
        registry,
        storage,
    )?;
    println!(
        "sangdam-hub listening on {} ({} batches stored in {}); fleet page at {}/",
        hub.addr(),
        stored,
        data.display(),
        hub.url()
    );
    // Serve until killed: every acknowledged batch is already on disk.
    loop {
        std::thread::park();
    }
}

fn add_device(
    id: &str,
    branch: &str,
    registry: &std::path::Path,
    key_out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let Some(out) = key_out else {
        return print_new_key(id, branch, registry);
    };
    // Made first (a new file, 0600), so that a key is never registered with nowhere to go.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create the key file {} (it must not exist yet)",
            out.display()
        )
    })?;
    let key = match sangdam_hub::add_device(registry, id, branch) {
        Ok(k) => k,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(out);
            return Err(e.into());
        }
    };
    writeln!(file, "{}", sangdam_wire::hex(&key))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key file {}", out.display()))?;
    println!("registered {id} ({branch}) in {}", registry.display());
    println!(
        "key written to {} (mode 0600): install it on the box as its sync.key_file credential, then restart the hub",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_new_key(id: &str, branch: &str, registry: &std::path::Path) -> anyhow::Result<ExitCode> {
    let key = sangdam_hub::add_device(registry, id, branch)?;
    println!("registered {id} ({branch}) in {}", registry.display());
    println!("key (shown only now; put it in the box's sync.key, then restart the hub):");
    println!("{}", sangdam_wire::hex(&key));
    Ok(ExitCode::SUCCESS)
}

fn run_bench(config: BenchConfig) -> anyhow::Result<ExitCode> {
    eprintln!(
        "bench: {} boxes × {} batches from {} client threads; building the uploads…",
        config.boxes, config.batches_per_box, config.client_threads
    );
    let report = bench::run(&config)?;
    print!("{}", report.table());
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
