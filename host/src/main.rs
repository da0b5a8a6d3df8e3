//! `sangdam-host`: the companion tool that prepares models for the box.
//!
//! `corpus index` is here; training, export, quantization and evaluation follow.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use sangdam_host::corpus::{self, SpeakerFrom, Spelling};

#[derive(Debug, Parser)]
#[command(
    name = "sangdam-host",
    version,
    about = "Prepares speech models for the sangdam box"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speech corpora in the AI Hub layout.
    #[command(subcommand)]
    Corpus(CorpusCmd),
}

#[derive(Debug, Subcommand)]
enum CorpusCmd {
    /// Pair audio and transcripts by file stem, normalise the text, split by speaker and
    /// write train/dev/test.jsonl and vocab.json.
    Index {
        /// Corpus root (audio and label trees anywhere below it).
        root: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "corpus-index")]
        out: PathBuf,
        /// Which half of `(spelling)/(pronunciation)` pairs to keep.
        #[arg(long, value_enum, default_value_t = Spelling::Orthographic)]
        spelling: Spelling,
        /// Where speaker ids come from.
        #[arg(long, value_enum, default_value_t = SpeakerFrom::Folder)]
        speaker_from: SpeakerFrom,
        /// Build a jamo vocabulary (Hangul syllables decomposed) instead of syllables.
        #[arg(long)]
        jamo: bool,
        /// Fraction of speakers for the dev split.
        #[arg(long, default_value_t = 0.1)]
        dev: f64,
        /// Fraction of speakers for the test split.
        #[arg(long, default_value_t = 0.1)]
        test: f64,
        /// Speakers that form the test split (comma-separated), instead of --test.
        #[arg(long, value_delimiter = ',')]
        test_speakers: Vec<String>,
    },
    /// Make a synthetic call-centre corpus with espeak-ng and a telephone channel, in
    /// the AI Hub layout (test sentences and voices held out).
    Synth {
        /// Output corpus root.
        #[arg(long, default_value = "corpus-synth")]
        out: PathBuf,
        /// Utterances to make.
        #[arg(long, default_value_t = 200)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Fraction of distinct sentences held out for the test split.
        #[arg(long, default_value_t = 0.1)]
        test_fraction: f64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Corpus(CorpusCmd::Index {
            root,
            out,
            spelling,
            speaker_from,
            jamo,
            dev,
            test,
            test_speakers,
        }) => {
            let mut idx = corpus::index(&root, spelling, speaker_from)?;
            if jamo {
                for it in &mut idx.items {
                    it.text = corpus::to_jamo(&it.text);
                }
            }
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let splits = corpus::split_with_test_speakers(&idx.items, dev, test, &test_speakers);
            for (name, items) in &splits {
                let path = out.join(format!("{name}.jsonl"));
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                );
                for it in items {
                    writeln!(f, "{}", serde_json::to_string(it)?)?;
                }
                f.flush()?;
                let hours: f64 = items.iter().map(|i| i.seconds).sum::<f64>() / 3600.0;
                println!("{name:<5} {:>7} utterances {hours:>8.2} h", items.len());
            }
            let train_texts = splits.get("train").map(Vec::as_slice).unwrap_or(&[]);
            let vocab = corpus::build_vocab(train_texts.iter().map(|i| i.text.as_str()));
            let vpath = out.join("vocab.json");
            std::fs::write(&vpath, serde_json::to_string_pretty(&vocab)?)
                .with_context(|| format!("cannot write {}", vpath.display()))?;
            println!("vocab {:>7} tokens -> {}", vocab.len(), vpath.display());
            for p in &idx.audio_without_text {
                eprintln!(
                    "unpaired audio (no transcript with the same name): {}",
                    p.display()
                );
            }
            for p in &idx.text_without_audio {
                eprintln!(
                    "unpaired transcript (no audio with the same name): {}",
                    p.display()
                );
            }
            for p in &idx.problems {
                eprintln!("skipped {}: {}", p.path.display(), p.reason);
            }
            eprintln!(
                "{} paired, {} audio without text, {} text without audio, {} skipped",
                idx.items.len(),
                idx.audio_without_text.len(),
                idx.text_without_audio.len(),
                idx.problems.len()
            );
            Ok(())
        }
        Command::Corpus(CorpusCmd::Synth {
            out,
            count,
            seed,
            test_fraction,
        }) => {
            let settings = corpus::synth::SynthSettings {
                count,
                seed,
                test_fraction,
                ..Default::default()
            };
            let s = corpus::synth::synthesize(&out, &settings)?;
            let summary = out.join("synth.json");
            std::fs::write(&summary, serde_json::to_string_pretty(&s)?)
                .with_context(|| format!("cannot write {}", summary.display()))?;
            println!(
                "{} utterances ({} test), {:.2} h, in {}",
                s.utterances,
                s.test_utterances,
                s.seconds / 3600.0,
                out.display()
            );
            println!(
                "index it with: sangdam-host corpus index {} --test-speakers {}",
                out.display(),
                s.test_speakers.join(",")
            );
            Ok(())
        }
    }
}
