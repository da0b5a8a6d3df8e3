//! `sangdam-hub serve | migrate | add-device | add-viewer | bench | bench-page`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sangdam_hub::bench::{self, BenchConfig};
use sangdam_hub::pagebench::{self, PageBenchConfig};
use sangdam_hub::{
    serve, HubConfig, PgStorage, Registry, SledStorage, Storage, StorageError, ViewerError, Viewers,
};

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
    /// Serve uploads from boxes (POST /v1/batches on --listen) and the fleet page for
    /// people (on --dashboard-listen, behind a login).
    Serve {
        /// Address boxes upload to (their sync.hub_url).
        #[arg(
            long,
            visible_alias = "addr",
            default_value = "127.0.0.1:8470",
            env = "SANGDAM_HUB_ADDR"
        )]
        listen: SocketAddr,
        /// Address of the dashboard (fleet page, /v1/summary, /v1/stats), for people.
        /// Firewall it separately from --listen; put TLS in front of it (its session
        /// cookie is Secure: browsers send it over https, or to localhost).
        #[arg(long, default_value = "127.0.0.1:8471", env = "SANGDAM_HUB_DASHBOARD")]
        dashboard_listen: SocketAddr,
        /// Serve no dashboard at all.
        #[arg(long, conflicts_with = "dashboard_listen")]
        no_dashboard: bool,
        /// A host name the dashboard answers to (repeatable), besides localhost and IP
        /// addresses: the name analysts type, e.g. hub.example.co.kr. Others get 421.
        #[arg(long = "dashboard-host", value_name = "NAME")]
        dashboard_hosts: Vec<String>,
        /// Dashboard accounts (written by `sangdam-hub add-viewer`).
        #[arg(long, default_value = "viewers.toml", env = "SANGDAM_HUB_VIEWERS")]
        viewers: PathBuf,
        /// Folder of the embedded batch store (sled); created if missing.
        #[arg(
            long,
            env = "SANGDAM_HUB_DATA",
            required_unless_present = "database",
            conflicts_with = "database"
        )]
        data: Option<PathBuf>,
        /// Keep the batches in PostgreSQL instead: postgres://USER:PASSWORD@HOST:PORT/DB.
        /// Prefer the environment variable: a command line is visible to other users.
        #[arg(long, env = "SANGDAM_HUB_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// Connections to PostgreSQL at most (per hub process).
        #[arg(long, default_value_t = 32)]
        database_connections: u32,
        /// Device registry (TOML, [[device]] id/key/branch). Read at start: restart the hub
        /// after adding a device.
        #[arg(long, default_value = "registry.toml", env = "SANGDAM_HUB_REGISTRY")]
        registry: PathBuf,
        /// Connections served at once per listener; more are answered 503.
        #[arg(long, default_value_t = 4096)]
        max_connections: usize,
        /// Uploads that may wait for the store at once (one thread each).
        #[arg(long, default_value_t = 256)]
        store_threads: usize,
    },
    /// Apply the PostgreSQL schema's migrations and exit (`serve` applies them too).
    Migrate {
        #[arg(long, env = "SANGDAM_HUB_DATABASE", hide_env_values = true)]
        database: String,
    },
    /// Create a dashboard account (or change its password with --replace). The password
    /// is read from the terminal without echo, or as one line from standard input.
    AddViewer {
        /// The viewer's login name, e.g. kim.analyst.
        name: String,
        #[arg(long, default_value = "viewers.toml", env = "SANGDAM_HUB_VIEWERS")]
        viewers: PathBuf,
        /// Set a new password for an existing viewer.
        #[arg(long)]
        replace: bool,
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
        /// The hub's store threads: uploads that may wait for their fsync at once (at least --threads + 4).
        #[arg(long, default_value_t = 128)]
        hub_threads: usize,
        /// Send a duplicate after every N-th upload (0: none).
        #[arg(long, default_value_t = 50)]
        duplicate_every: u64,
        /// Folder to make the temporary store in (default: the system's temp folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Store in this PostgreSQL database instead of sled: an empty scratch database
        /// (the bench refuses one holding batches, and empties it at the end).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Fleet-page bench: fills a fresh store with DEVICES × DAYS daily batches, then times
    /// one page (read, summarise, render) from the per-device aggregates and, with
    /// --fold, from a fold of every batch (the peer); prints a table.
    BenchPage {
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Threads filling the store.
        #[arg(long, default_value_t = 64)]
        threads: usize,
        /// Pages per measurement.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Also time the peer: a page folded from every stored batch.
        #[arg(long)]
        fold: bool,
        /// Folder to make the temporary store in (default: the system's temp folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Fill this empty PostgreSQL scratch database instead (emptied at the end).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// One measurement of bench-page, run by it in a child process (prints JSON).
    #[command(hide = true)]
    BenchPageProbe {
        #[arg(long)]
        devices: usize,
        #[arg(long)]
        source: String,
        #[arg(long)]
        repeats: usize,
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        database: Option<String>,
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
            listen,
            dashboard_listen,
            no_dashboard,
            dashboard_hosts,
            viewers,
            data,
            database,
            database_connections,
            registry,
            max_connections,
            store_threads,
        } => {
            init_logging("info");
            let config = HubConfig {
                dashboard: (!no_dashboard).then_some(dashboard_listen),
                dashboard_hosts,
                max_connections,
                store_threads,
                ..HubConfig::new(listen)
            };
            let store = match (data, database) {
                (_, Some(url)) => Store::Postgres(url, database_connections),
                (Some(dir), None) => Store::Sled(dir),
                (None, None) => unreachable!("clap requires --data or --database"),
            };
            run_serve(config, store, registry, viewers)
        }
        Command::Migrate { database } => migrate(&database),
        Command::AddViewer {
            name,
            viewers,
            replace,
        } => add_viewer(&name, &viewers, replace),
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
            database,
        } => {
            init_logging("error");
            run_bench(BenchConfig {
                boxes,
                batches_per_box,
                client_threads: threads,
                hub_threads,
                duplicate_every,
                data_parent: data,
                database,
            })
        }
        Command::BenchPage {
            devices,
            days,
            threads,
            repeats,
            fold,
            data,
            database,
        } => {
            init_logging("error");
            run_page_bench(PageBenchConfig {
                devices,
                days,
                fill_threads: threads,
                repeats,
                fold,
                data_parent: data,
                database,
            })
        }
        Command::BenchPageProbe {
            devices,
            source,
            repeats,
            data,
            database,
        } => {
            init_logging("error");
            pagebench::probe(
                data.as_deref(),
                database.as_deref(),
                devices,
                &source,
                repeats,
            )
            .map_err(anyhow::Error::from)
            .and_then(|p| {
                println!("{}", serde_json::to_string(&p)?);
                Ok(ExitCode::SUCCESS)
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

/// Where `serve` keeps the batches.
enum Store {
    Sled(PathBuf),
    /// URL, pool size.
    Postgres(String, u32),
}

fn migrate(url: &str) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let storage = PgStorage::connect(url, 1)?;
    let applied = storage.migrate()?;
    println!(
        "{}: schema up to date ({applied} migrations applied now)",
        storage.url()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_serve(
    mut config: HubConfig,
    store: Store,
    registry_path: PathBuf,
    viewers_path: PathBuf,
) -> anyhow::Result<ExitCode> {
    let registry = Registry::load(&registry_path)?;
    if registry.is_empty() {
        tracing::warn!(
            registry = %registry_path.display(),
            "the registry has no devices: every upload will be refused (add one with `sangdam-hub add-device ID --branch NAME`)"
        );
    }
    if config.dashboard.is_some() {
        config.viewers = match Viewers::load(&viewers_path) {
            Ok(v) => v,
            Err(ViewerError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::warn!(
                    viewers = %viewers_path.display(),
                    "no viewer accounts: the dashboard refuses every login (add one with `sangdam-hub add-viewer NAME --viewers {}`)",
                    viewers_path.display()
                );
                Viewers::new()
            }
            Err(e) => return Err(e.into()),
        };
    }
    let (storage, place): (Arc<dyn Storage>, String) = match store {
        Store::Sled(data) => {
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create the data folder {}", data.display()))?;
            (
                Arc::new(SledStorage::open(&data)?),
                data.display().to_string(),
            )
        }
        Store::Postgres(url, connections) => {
            let pg = PgStorage::connect(&url, connections)?;
            match pg.ensure_ready() {
                Ok(()) => {}
                // Unreachable now: serve anyway, answering 503 until it is back.
                Err(StorageError::Backend(e)) => tracing::error!(
                    "{e}; serving anyway: boxes get 503 and keep their batches until the database answers"
                ),
                Err(e) => return Err(e.into()),
            }
            let place = pg.url().to_owned();
            (Arc::new(pg), place)
        }
    };
    let stored = match storage.count() {
        Ok(n) => n.to_string(),
        Err(_) => "?".into(),
    };
    let viewers = config.viewers.len();
    let hub = serve(config, registry, storage)?;
    match hub.dashboard_url() {
        Some(url) => println!(
            "sangdam-hub listening on {} ({stored} batches stored in {place}); dashboard at {url}/ ({viewers} viewers)",
            hub.addr(),
        ),
        None => println!(
            "sangdam-hub listening on {} ({stored} batches stored in {place}); no dashboard",
            hub.addr(),
        ),
    }
    // Serve until killed: every acknowledged batch is already on disk.
    loop {
        std::thread::park();
    }
}

fn add_viewer(name: &str, viewers: &std::path::Path, replace: bool) -> anyhow::Result<ExitCode> {
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ: nothing changed");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    sangdam_hub::add_viewer(viewers, name, &password, replace)?;
    println!(
        "viewer {name} {} in {} (restart the hub to load it)",
        if replace { "updated" } else { "added" },
        viewers.display()
    );
    Ok(ExitCode::SUCCESS)
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

fn run_page_bench(config: PageBenchConfig) -> anyhow::Result<ExitCode> {
    let report = pagebench::run(&config)?;
    print!("{}", report.table());
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
