//! `sangdam`: the firmware's command line. Thin: parse arguments, set up logging, open the
//! store and models, and hand over to the library.

use sangdam_wire::now_unix;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use sangdam::asr::AsrEngine;
use sangdam::config::{Config, ConfigSource};
use sangdam::models::{Manifest, ModelError, ModelKind};
use sangdam::pipeline::{self, Event, Outcome, Settings};
use sangdam::sentiment::SentimentEngine;
use sangdam::store::{CallRecord, DayCounters, Store, UtteranceRecord};

/// On-device Korean call transcription for a desk-side call-centre box.
#[derive(Debug, Parser)]
#[command(name = "sangdam", version, about, long_about = None)]
struct Cli {
    /// Config file (default: /etc/sangdam/sangdam.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory of the store (overrides the config's store.data_dir).
    #[arg(long, global = true, env = "SANGDAM_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Models folder holding manifest.toml (overrides the config's models.dir).
    #[arg(long, global = true, env = "SANGDAM_MODELS", value_name = "DIR")]
    models: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Transcribe recorded calls (WAV files or folders of them) and store them.
    Analyze {
        /// WAV files, or folders searched recursively for *.wav.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List stored calls.
    Calls,
    /// Print one call's transcript.
    Show {
        /// Call id, or a unique prefix of it (at least 4 hex digits).
        id: String,
    },
    /// Write stored calls for other tools.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Show the effective configuration.
    Config {
        /// Print the built-in defaults as a commented TOML file instead.
        #[arg(long)]
        print_defaults: bool,
    },
    /// Check every installed model against models/manifest.toml and list them.
    Models,
    /// Classify texts as positive or negative with the installed sentiment model: the
    /// given texts, or one text per line from stdin. Prints label, probability, text.
    Sentiment {
        /// Texts to classify (none: read lines from stdin).
        texts: Vec<String>,
    },
    /// Keywords by sentiment (day, week, all) and the drivers of satisfaction over the
    /// stored calls. Recomputed when stale (insights.refresh_hours) or new calls came.
    Insights {
        /// Recompute now (retrain the trees) even if the stored insights are fresh.
        #[arg(long)]
        refresh: bool,
        /// Print the stored report as JSON instead.
        #[arg(long)]
        json: bool,
        /// Instead of the store, treat each row of this id<TAB>text<TAB>label file as a
        /// call (e.g. ../shared/data/nsmc-like/test.tsv); nothing is stored.
        #[arg(long, value_name = "FILE")]
        tsv: Option<PathBuf>,
    },
    /// Business recommendations with their evidence, and per call the products the
    /// caller asked about and those that satisfied similar callers.
    Recommend {
        /// Only this call (id or unique prefix).
        #[arg(long)]
        call: Option<String>,
        #[arg(long)]
        refresh: bool,
    },
    /// Write the insights page (charts and tables) as one self-contained HTML file.
    Report {
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        #[arg(long)]
        refresh: bool,
    },
    /// Serve the insights page read-only over HTTP (insights.serve_addr, localhost by
    /// default) to the viewers who log in (add them with add-viewer first). Stop with
    /// Ctrl-C.
    Serve {
        /// Address to bind, overriding insights.serve_addr.
        #[arg(long)]
        addr: Option<String>,
    },
    /// Let someone log in to the page that `sangdam serve` shows, or give an existing
    /// viewer a new password. The password is read from the terminal without echo (asked
    /// twice), or as one line from standard input; 12 to 128 characters. It is stored as
    /// an argon2id hash in insights.viewers_file (default DATA/viewers, mode 0600) and
    /// never shown. Restart `sangdam serve` afterwards.
    AddViewer {
        /// The viewer's login name: letters, digits, '-', '_', '.', '@', e.g. kim.manager.
        name: String,
    },
    /// Take away a viewer's login (from insights.viewers_file). Restart `sangdam serve`
    /// afterwards: that ends the viewer's open sessions too.
    RemoveViewer { name: String },
    /// Listen to the phone line ([live] in the config): find calls, record them to the
    /// spool, transcribe and store them; the desk panel on GPIO. Runs until SIGTERM or
    /// Ctrl-C (or, for a wav or generator source, until its input is done).
    Run,
    /// Show the running daemon's state: backlog, RTF of the last hour, disk, last sync,
    /// drops and errors. Exit status 3 when no daemon runs.
    Status {
        /// Print the snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send the outbox to the hub now ([sync] in the config): builds the batches of the
    /// days not yet sent, then sends them. With the daemon running, asks it to sync and
    /// waits for the result.
    Sync {
        /// Required: sync runs on its schedule otherwise (guards against a typo'd command).
        #[arg(long)]
        now: bool,
    },
    /// Measure recognition speed and memory (prints a table; see BENCHMARKS.md).
    Bench(sangdam::bench::BenchArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One JSON object per call and line.
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, source) = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log.level);
    tracing::debug!(config = %source, "configuration loaded");
    match run(cli, config, source) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn run(cli: Cli, mut config: Config, source: ConfigSource) -> Result<ExitCode> {
    if let Some(d) = cli.data {
        config.store.data_dir = d;
    }
    if let Some(m) = cli.models {
        config.models.dir = m;
    }
    match cli.command {
        Command::Analyze { paths } => analyze(&config, &paths),
        Command::Calls => calls(&config),
        Command::Show { id } => show(&config, &id),
        Command::Export { format } => export(&config, format),
        Command::Config { print_defaults } => {
            if print_defaults {
                print!("{}", Config::commented_defaults());
            } else {
                println!("# effective configuration (from {source})");
                // The device key is shown as "<set>" or "<unset>", never itself.
                print!("{}", config.shown()?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models => models(&config),
        Command::Sentiment { texts } => sentiment(&config, &texts),
        Command::Insights { refresh, json, tsv } => {
            insights(&config, refresh, json, tsv.as_deref())
        }
        Command::Recommend { call, refresh } => recommend(&config, call.as_deref(), refresh),
        Command::Report { html, refresh } => report(&config, &html, refresh),
        Command::Serve { addr } => serve(&config, addr.as_deref()),
        Command::AddViewer { name } => add_viewer(&config, &name),
        Command::RemoveViewer { name } => remove_viewer(&config, &name),
        Command::Bench(args) => {
            sangdam::bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => run_daemon(&config),
        Command::Status { json } => status(&config, json),
        Command::Sync { now } => sync_now(&config, now),
    }
}

fn open_store(config: &Config) -> Result<Store> {
    Ok(Store::open_in(
        &config.store.data_dir,
        &config.store.time_zone,
    )?)
}

/// The speech model, and the analysis settings with the sentiment model.
fn load_analysis(config: &Config) -> Result<(AsrEngine, Settings)> {
    let manifest = Manifest::load(&config.models.dir)?;
    let model = manifest.verified(ModelKind::AsrCtc, &config.models.asr)?;
    let vocab = model
        .vocab
        .as_deref()
        .context("the ASR model has no vocabulary")?;
    let vocab = sangdam::asr::Vocab::load(vocab)?;
    let choice = sangdam::asr::choose_decoder(
        &config.asr,
        &config.models.lm,
        &manifest,
        &config.insights.products,
        &vocab,
    );
    for w in &choice.warnings {
        tracing::warn!("{w}");
    }
    for n in &choice.notes {
        tracing::info!("{n}");
    }
    let engine = AsrEngine::load_with(&model.file, vocab, choice.decoder)?;
    tracing::info!(model = %model.label(), decoder = %choice.label, "speech model loaded");
    let sentiment = load_sentiment(config, &manifest)?;
    let settings = Settings {
        vad: config.vad.clone(),
        channels: config.audio.channel_map(),
        batch: config.asr.batch,
        workers: config.asr.workers,
        model_label: model.label(),
        sentiment,
        redact: config.privacy.redact_transcripts,
    };
    Ok((engine, settings))
}

fn run_daemon(config: &Config) -> Result<ExitCode> {
    let (engine, settings) = load_analysis(config)?;
    let store = open_store(config)?;
    sangdam::app::daemon(config, store, engine, settings)?.run()?;
    Ok(ExitCode::SUCCESS)
}

fn sync_now(config: &Config, now: bool) -> Result<ExitCode> {
    use sangdam::daemon::Status;
    anyhow::ensure!(now, "say `sangdam sync --now`; otherwise the daemon syncs on its schedule (sync.interval_minutes)");
    let dir = &config.store.data_dir;
    if let Ok(st) = Status::read(dir) {
        if st.alive() && st.state != sangdam::daemon::DaemonState::Stopped {
            // The daemon holds the store: ask it, and wait for its answer.
            std::fs::write(dir.join(sangdam::sync::REQUEST_FILE), b"now\n")
                .with_context(|| format!("cannot write the sync request into {}", dir.display()))?;
            eprintln!("asked the running daemon (pid {}) to sync; waiting", st.pid);
            let t = Instant::now();
            while dir.join(sangdam::sync::REQUEST_FILE).exists() {
                anyhow::ensure!(
                    t.elapsed().as_secs() < 600,
                    "the daemon has not synced within 10 minutes; see `journalctl -u sangdam`"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            std::thread::sleep(std::time::Duration::from_millis(1200));
            let st = Status::read(dir)?;
            println!(
                "last sync: {}; {} batches waiting{}",
                st.last_sync_unix
                    .map(sangdam::store::format_unix)
                    .unwrap_or_else(|| "never".into()),
                st.outbox_batches.unwrap_or(0),
                st.sync_error
                    .map(|e| format!("; error: {e}"))
                    .unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let store = open_store(config)?;
    let syncer = sangdam::sync::Syncer::new(&config.sync, &config.insights.extra_stopwords, store)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report = syncer.run_once(&now_unix, &stop)?;
    println!("{report}");
    Ok(if report.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn status(config: &Config, json: bool) -> Result<ExitCode> {
    let dir = &config.store.data_dir;
    let st = match sangdam::daemon::Status::read(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "sangdam: not running: no status in {} (start it with `sangdam run` or `systemctl start sangdam`)",
                dir.display()
            );
            return Ok(ExitCode::from(3));
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", dir.join("status.json").display()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print!("{}", st.render(now_unix()));
    }
    Ok(
        if st.alive() && st.state != sangdam::daemon::DaemonState::Stopped {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        },
    )
}

fn analyze(config: &Config, paths: &[PathBuf]) -> Result<ExitCode> {
    let (engine, settings) = load_analysis(config)?;
    let store = open_store(config)?;

    let files = pipeline::expand_inputs(paths);
    let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut audio_s = 0.0f64;
    let mut failed = 0usize;
    let mut stdout = std::io::stdout().lock();
    for path in &files {
        let mut on_event = |ev: Event<'_>| match ev {
            Event::Utterance { call, utterance } => {
                let line = utterance_line(&call.short(), utterance);
                bar.suspend(|| {
                    let _ = writeln!(stdout, "{line}");
                });
            }
            Event::Audio { seconds } => {
                audio_s += seconds;
                let wall = started.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "{:.3} h audio  RTF {:.3}",
                    audio_s / 3600.0,
                    if audio_s > 0.0 { wall / audio_s } else { 0.0 }
                ));
            }
        };
        match pipeline::analyze_file(path, &engine, &store, &settings, now_unix(), &mut on_event) {
            Ok(Outcome::Stored { call, .. }) => bar.suspend(|| {
                eprintln!(
                    "stored {} {} ({:.1} s, {} utterances)",
                    call.id.short(),
                    call.source,
                    call.duration_s,
                    call.utterance_count
                );
                if let Some(s) = &call.sentiment {
                    eprintln!("  sentiment {}", s.line());
                }
            }),
            Ok(Outcome::AlreadyStored { call }) => bar.suspend(|| {
                eprintln!(
                    "already stored {} {} (analysed before; not repeated)",
                    call.id.short(),
                    path.display()
                )
            }),
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let today = store.day_of(now_unix());
    match store.day(today) {
        Ok(d) => eprintln!("today ({today}): {}", day_line(&d)),
        Err(e) => eprintln!("error: cannot read today's counters: {e}"),
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "{} files, {} failed, {:.1} s audio in {:.1} s (RTF {:.3})",
        files.len(),
        failed,
        audio_s,
        wall,
        if audio_s > 0.0 { wall / audio_s } else { 0.0 }
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn utterance_line(call: &str, u: &UtteranceRecord) -> String {
    let mood = match &u.sentiment {
        Some(s) => format!("{:<8} {:.2}  ", s.label.as_str(), s.p_positive),
        None => String::new(),
    };
    format!(
        "{call}  {:<8} {:>8.2}-{:<8.2} {mood}{}",
        u.speaker.to_string(),
        u.start_s,
        u.end_s,
        u.text
    )
}

fn day_line(d: &DayCounters) -> String {
    format!(
        "{} calls ({} positive, {} negative, {} neutral), {} utterances ({} positive, {} negative, {} neutral), {:.1} s audio",
        d.calls,
        d.positive_calls,
        d.negative_calls,
        d.neutral_calls,
        d.utterances,
        d.positive_utterances,
        d.negative_utterances,
        d.neutral_utterances,
        d.audio_seconds
    )
}

/// The configured sentiment model, or `None` (with a warning) when it is not installed
/// or switched off. A damaged one is an error.
fn load_sentiment(
    config: &Config,
    manifest: &Manifest,
) -> Result<Option<(SentimentEngine, String)>> {
    if config.models.sentiment.is_empty() {
        return Ok(None);
    }
    let model = match manifest.verified(ModelKind::Sentiment, &config.models.sentiment) {
        Ok(m) => m,
        Err(e @ ModelError::NotInstalled { .. }) => {
            tracing::warn!("calls are stored without sentiment: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let tokenizer = model
        .vocab
        .as_deref()
        .context("the sentiment model has no tokenizer (vocab) file")?;
    // The manifest's neutral band (checked when the manifest was read), if it has one.
    let engine =
        SentimentEngine::load(&model.file, tokenizer)?.with_neutral_band(model.entry.neutral_band);
    tracing::info!(model = %model.label(), neutral_band = ?model.entry.neutral_band, "sentiment model loaded");
    Ok(Some((engine, model.label())))
}

fn sentiment(config: &Config, texts: &[String]) -> Result<ExitCode> {
    let manifest = Manifest::load(&config.models.dir)?;
    let name = if config.models.sentiment.is_empty() {
        "sentiment-ko"
    } else {
        config.models.sentiment.as_str()
    };
    let model = manifest.verified(ModelKind::Sentiment, name)?;
    let tokenizer = model
        .vocab
        .as_deref()
        .context("the sentiment model has no tokenizer (vocab) file")?;
    let engine =
        SentimentEngine::load(&model.file, tokenizer)?.with_neutral_band(model.entry.neutral_band);
    let mut out = std::io::stdout().lock();
    let mut print = |text: &str| -> Result<()> {
        let s = engine.classify(text)?;
        let cut = if s.truncated_chars > 0 {
            format!(
                "  [{} characters beyond the model's limit not read]",
                s.truncated_chars
            )
        } else {
            String::new()
        };
        writeln!(out, "{}\t{:.3}\t{}{cut}", s.label, s.confidence(), text)?;
        Ok(())
    };
    if texts.is_empty() {
        let stdin = std::io::stdin();
        let mut line = String::new();
        let mut reader = stdin.lock();
        loop {
            line.clear();
            let n =
                std::io::BufRead::read_line(&mut reader, &mut line).context("cannot read stdin")?;
            if n == 0 {
                break;
            }
            print(line.trim_end_matches(['\n', '\r']))?;
        }
    } else {
        for t in texts {
            print(t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn calls(config: &Config) -> Result<ExitCode> {
    let store = open_store(config)?;
    let calls = store.calls()?;
    println!(
        "{:<12}  {:>9}  {:>5}  {:<23}  source",
        "id", "duration", "utts", "analysed"
    );
    for c in &calls {
        println!(
            "{:<12}  {:>8.1}s  {:>5}  {:<23}  {}",
            c.id.short(),
            c.duration_s,
            c.utterance_count,
            store.format_unix(c.analysed_at),
            c.source
        );
    }
    eprintln!("{} calls in {}", calls.len(), store.path().display());
    Ok(ExitCode::SUCCESS)
}

fn show(config: &Config, id: &str) -> Result<ExitCode> {
    let store = open_store(config)?;
    let id = store.resolve(id)?;
    let call = store
        .call(&id)?
        .with_context(|| format!("call {id} disappeared while reading"))?;
    println!("call      {}", call.id);
    println!("source    {}", call.source);
    println!(
        "audio     {:.1} s, {} channel(s), {} Hz",
        call.duration_s, call.channels, call.sample_rate
    );
    println!(
        "analysed  {} with {}",
        store.format_unix(call.analysed_at),
        call.asr_model
    );
    match &call.sentiment {
        Some(s) => {
            println!(
                "sentiment {} {:.2} by {} ({})",
                s.overall, s.score, s.basis, s.model
            );
            for sp in &s.speakers {
                println!(
                    "  {:<8}  {} {:.2}  {} utterances: {} positive, {} negative, {} neutral",
                    sp.speaker.to_string(),
                    sp.label,
                    sp.score,
                    sp.utterances,
                    sp.positive,
                    sp.negative,
                    sp.neutral
                );
            }
            match &s.trend {
                Some(t) => println!(
                    "trend     {} ({:.2} in the first third, {:.2} in the last)",
                    t.direction, t.first, t.last
                ),
                None => println!(
                    "trend     n/a (no utterance of {} in the first or last third)",
                    s.basis
                ),
            }
        }
        None => println!("sentiment not classified (no sentiment model was installed)"),
    }
    let day = store.day_of(call.analysed_at);
    println!("day       {day}: {}", day_line(&store.day(day)?));
    println!();
    for u in store.utterances(&id)? {
        println!("{}", utterance_line(&call.id.short(), &u));
    }
    Ok(ExitCode::SUCCESS)
}

fn export(config: &Config, format: ExportFormat) -> Result<ExitCode> {
    let store = open_store(config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ExportFormat::Jsonl => {
            for call in store.calls()? {
                let utterances = store.utterances(&call.id)?;
                writeln!(out, "{}", export_json(&call, &utterances))?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn export_json(call: &CallRecord, utterances: &[UtteranceRecord]) -> serde_json::Value {
    serde_json::json!({
        "id": call.id.to_string(),
        "source": call.source,
        "duration": call.duration_s,
        "sample_rate": call.sample_rate,
        "channels": call.channels,
        "analysed_at": call.analysed_at,
        "asr_model": call.asr_model,
        "sentiment": call.sentiment,
        "utterances": utterances.iter().map(|u| serde_json::json!({
            "channel": u.channel,
            "speaker": u.speaker.to_string(),
            "start": u.start_s,
            "end": u.end_s,
            "text": u.text,
            "sentiment": u.sentiment,
        })).collect::<Vec<_>>(),
    })
}

fn models(config: &Config) -> Result<ExitCode> {
    let manifest = Manifest::load(&config.models.dir)?;
    if manifest.models.is_empty() {
        println!(
            "no models listed in {}",
            config
                .models
                .dir
                .join(sangdam::models::MANIFEST_FILE)
                .display()
        );
    }
    let mut bad = 0;
    for entry in &manifest.models {
        match manifest.verified(entry.kind, &entry.name) {
            Ok(m) => println!(
                "ok   {:<14} {:<10} {} ({} bytes)",
                entry.name,
                entry.kind.to_string(),
                m.file.display(),
                entry.bytes
            ),
            Err(e) => {
                bad += 1;
                println!("FAIL {:<14} {e}", entry.name);
            }
        }
    }
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn insights(config: &Config, refresh: bool, json: bool, tsv: Option<&Path>) -> Result<ExitCode> {
    use sangdam::insights::run::{
        compute, docs_from_tsv, insights_text, load_or_refresh, recommend_text,
    };
    if let Some(tsv) = tsv {
        let keywords = sangdam::insights::keywords::Keywords::new(&config.insights.extra_stopwords);
        let docs = docs_from_tsv(tsv, &keywords, config.insights.max_calls)?;
        let i = compute(&docs, 0, &config.insights, now_unix());
        if json {
            println!("{}", serde_json::to_string_pretty(&i)?);
        } else {
            print!("{}", insights_text(&i));
            println!();
            print!("{}", recommend_text(&i, None, &config.insights.products));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(config)?;
    let (i, computed) = load_or_refresh(&store, &config.insights, refresh, now_unix())?;
    if computed {
        tracing::info!(calls = i.calls, "insights computed and stored");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&i)?);
    } else {
        print!("{}", insights_text(&i));
    }
    Ok(ExitCode::SUCCESS)
}

fn recommend(config: &Config, call: Option<&str>, refresh: bool) -> Result<ExitCode> {
    use sangdam::insights::keywords::Keywords;
    use sangdam::insights::recommend::SimilarCalls;
    use sangdam::insights::run::{docs_from_store, load_or_refresh, recommend_text};
    let store = open_store(config)?;
    let (i, _) = load_or_refresh(&store, &config.insights, refresh, now_unix())?;
    let one = match call {
        None => None,
        Some(prefix) => {
            let id = store.resolve(prefix)?.to_hex();
            let keywords = Keywords::new(&config.insights.extra_stopwords);
            let (docs, _) = docs_from_store(&store, &keywords, config.insights.max_calls)?;
            let doc = docs.iter().find(|d| d.id == id).with_context(|| {
                format!("call {id} has no sentiment (analysed without the sentiment model), so it has no recommendations")
            })?;
            Some(SimilarCalls::new(&docs, &config.insights.products).for_call(doc, 3))
        }
    };
    print!(
        "{}",
        recommend_text(&i, one.as_ref(), &config.insights.products)
    );
    Ok(ExitCode::SUCCESS)
}

fn report(config: &Config, html: &Path, refresh: bool) -> Result<ExitCode> {
    use sangdam::insights::run::{load_or_refresh, page};
    let store = open_store(config)?;
    let (i, _) = load_or_refresh(&store, &config.insights, refresh, now_unix())?;
    let text = sangdam::insights::report::render(&page(&i, "sangdam insights"));
    std::fs::write(html, text)
        .with_context(|| format!("cannot write the report to {}", html.display()))?;
    println!("wrote {} ({} calls)", html.display(), i.calls);
    Ok(ExitCode::SUCCESS)
}

/// The viewers `serve` lets in: the file must exist, be private and name someone.
fn load_viewers(config: &Config) -> Result<sangdam::insights::viewers::Viewers> {
    let path = config.viewers_path();
    if !path.exists() {
        anyhow::bail!(
            "nobody can log in to the page: there is no viewers file {} (insights.viewers_file). Add a viewer first: `sangdam add-viewer NAME` (it asks for the password)",
            path.display()
        );
    }
    let viewers = sangdam::insights::viewers::Viewers::load(&path)?;
    anyhow::ensure!(
        !viewers.is_empty(),
        "nobody can log in to the page: the viewers file {} names no viewer. Add one: `sangdam add-viewer NAME` (it asks for the password)",
        path.display()
    );
    Ok(viewers)
}

fn serve(config: &Config, addr: Option<&str>) -> Result<ExitCode> {
    use sangdam::insights::run::{load_or_refresh, page};
    // Before binding: a server nobody can log in to is a mistake to report at once.
    let viewers = load_viewers(config)?;
    let addr = addr.unwrap_or(&config.insights.serve_addr);
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot listen on {addr} (in use? set insights.serve_addr or --addr)")
    })?;
    let store = open_store(config)?;
    let cfg = config.insights.clone();
    println!("serving insights on http://{}/", listener.local_addr()?);
    tracing::info!(
        viewers = viewers.len(),
        file = %config.viewers_path().display(),
        "the page needs a login"
    );
    let render = move || {
        load_or_refresh(&store, &cfg, false, now_unix())
            .map(|(i, _)| sangdam::insights::report::render(&page(&i, "sangdam insights")))
            .map_err(|e| e.to_string())
    };
    // The names the page answers to (DNS rebinding): the configured ones and the
    // listening address's host, besides localhost and IP addresses.
    let mut names = config.insights.allowed_hosts.clone();
    names.push(addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_owned());
    let hosts = sangdam::insights::report::AllowedHosts::new(&names);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    sangdam::insights::report::serve_allowing(listener, render, stop, hosts, viewers)?;
    Ok(ExitCode::SUCCESS)
}

/// A new password for `name`: from the terminal without echo (twice), else one line of
/// standard input. Never printed.
fn read_password(name: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("the same again: ")
            .context("cannot read the password from the terminal")?;
        anyhow::ensure!(first == again, "the two passwords differ: nothing changed");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    sangdam::insights::viewers::check_password(&password)
        .map_err(|e| anyhow::anyhow!("{e}: nothing changed"))?;
    Ok(password)
}

fn add_viewer(config: &Config, name: &str) -> Result<ExitCode> {
    use sangdam::insights::viewers::{self, Added};
    viewers::check_name(name).map_err(anyhow::Error::msg)?;
    let path = config.viewers_path();
    let password = read_password(name)?;
    let done = viewers::add_viewer(&path, name, &password)?;
    drop(password);
    match done {
        Added::New => eprintln!("added viewer {name} to {}", path.display()),
        Added::Replaced => eprintln!(
            "changed the password of viewer {name} in {}",
            path.display()
        ),
    }
    eprintln!("restart `sangdam serve` if it runs, for this to take effect");
    Ok(ExitCode::SUCCESS)
}

fn remove_viewer(config: &Config, name: &str) -> Result<ExitCode> {
    let path = config.viewers_path();
    let left = sangdam::insights::viewers::remove_viewer(&path, name)?;
    eprintln!(
        "removed viewer {name} from {} ({left} left); restart `sangdam serve` if it runs, which also ends {name}'s sessions",
        path.display()
    );
    if left == 0 {
        eprintln!("with no viewer left, `sangdam serve` will not start");
    }
    Ok(ExitCode::SUCCESS)
}
