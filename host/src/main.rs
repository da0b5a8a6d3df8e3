//! `sangdam-host`: the companion tool that prepares models for the box.
//!
//! `corpus index|synth` builds a corpus, `train` trains or fine-tunes a wav2vec2 CTC
//! model on it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use sangdam_host::corpus::{self, SpeakerFrom, Spelling};
use sangdam_host::train::{self, Padding, Start, TrainSettings};

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
    /// The Korean sentiment classifier: train, export, evaluate.
    #[command(subcommand)]
    Sentiment(SentimentCmd),
    /// Fine-tune a Hugging Face wav2vec2 checkpoint (or train one from a config.json)
    /// with CTC on a `corpus index` split. The defaults are the seed's fine-tuning
    /// recipe (batch 2, 50 epochs, lr 5e-5, labels <= 256, audio <= 246,000 samples).
    Train(TrainArgs),
    /// Export a checkpoint folder (config.json + model.safetensors) to ONNX for tract.
    Export {
        /// Checkpoint folder (e.g. ckpt/run/final).
        checkpoint: PathBuf,
        /// Output .onnx file; vocab.json from the checkpoint is copied beside it.
        #[arg(long, default_value = "model.onnx")]
        out: PathBuf,
    },
    /// Turn an ONNX model exported by this tool (f32 or int8) back into a checkpoint
    /// folder that `train --checkpoint` fine-tunes: how a shipped model is trained
    /// further when its training checkpoints are gone.
    Import {
        /// The exported .onnx (vocab.json beside it is copied too).
        model: PathBuf,
        /// The architecture it was exported from (e.g. host/recipes/asr-ko-small.json).
        #[arg(long)]
        config: PathBuf,
        /// Output checkpoint folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an int8 variant of an exported ONNX model.
    Quantize {
        /// The f32 model from `export`.
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// dynamic-matmul (MatMul int8, convolutions f32), dynamic-keepN (also the
        /// convolutions after the first N), dynamic-all, or weight-only.
        #[arg(long, default_value = "dynamic-matmul")]
        variant: String,
    },
    /// Install a model into a models folder: copy it and its vocabulary into
    /// DIR/NAME/ and write its manifest entry (sha256, size, recipe, scores).
    Package(PackageArgs),
    /// CER and WER of ONNX models on a corpus split, through the firmware's engine.
    Eval(EvalArgs),
    /// The syllable n-gram language model of the box's beam search.
    #[command(subcommand)]
    Lm(LmCmd),
}

#[derive(Debug, clap::Args)]
struct PackageArgs {
    /// The ONNX file to ship.
    model: PathBuf,
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    #[arg(long)]
    name: String,
    /// asr-ctc or sentiment.
    #[arg(long, default_value = "asr-ctc")]
    kind: String,
    /// vocab.json (asr-ctc) or tokenizer.json (sentiment).
    #[arg(long)]
    vocab: Option<PathBuf>,
    #[arg(long, default_value_t = 16_000)]
    sample_rate: u32,
    #[arg(long)]
    quantization: Option<String>,
    /// How it was made (corpus recipe, training command, steps).
    #[arg(long, default_value = "")]
    made: String,
    /// Scores as name=value (repeatable), e.g. cer_synth_test_int8=0.043.
    #[arg(long = "score")]
    scores: Vec<String>,
    /// ngram-lm: the tuned LM weight and insertion bonus ([model.decoder]).
    #[arg(long)]
    alpha: Option<f32>,
    #[arg(long)]
    beta: Option<f32>,
    #[arg(long)]
    hotword_bonus: Option<f32>,
    /// sentiment: p(positive) from LO to HI is labelled neutral (`neutral_band`).
    #[arg(long, value_name = "LO,HI", value_parser = sangdam_host::package::parse_neutral_band)]
    neutral_band: Option<[f32; 2]>,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// One or more .onnx models (sharing one vocab.json).
    #[arg(required = true)]
    models: Vec<PathBuf>,
    #[arg(long)]
    vocab: PathBuf,
    /// A split from `corpus index` (e.g. corpus-index/test.jsonl).
    #[arg(long)]
    split: Vec<PathBuf>,
    /// Also score the real clip in this folder (../shared/data/speech-real).
    #[arg(long)]
    real: Option<PathBuf>,
    /// Also score the real read-speech set in this folder
    /// (../shared/data/speech-real-dev), as recorded and through the phone channel.
    /// Evaluation only: never train or tune on it.
    #[arg(long)]
    real_dev: Option<PathBuf>,
    /// Use at most this many utterances of each split.
    #[arg(long, default_value_t = usize::MAX)]
    limit: usize,
    /// Write the scores as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Decode with a prefix beam search of this width (0: greedy).
    #[arg(long, default_value_t = 0)]
    beam: usize,
    #[command(flatten)]
    fusion: FusionArgs,
}

/// Shallow fusion and hotwords for `eval --beam` and `lm tune`.
#[derive(Debug, clap::Args)]
struct FusionArgs {
    /// An n-gram LM (binary from `lm build`, or ARPA) fused into the beam search.
    #[arg(long)]
    lm: Option<PathBuf>,
    /// LM weight (on natural-log probabilities).
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Insertion bonus per LM unit (syllable or word boundary).
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// Boost the default catalogue's product names and aliases (what the daemon does
    /// with `insights.products`).
    #[arg(long)]
    hotwords: bool,
    /// More hotwords, one per line.
    #[arg(long)]
    hotword_file: Option<PathBuf>,
    /// Bonus per matched hotword token.
    #[arg(long, default_value_t = 1.5)]
    hotword_bonus: f32,
    /// Tokens more than this (natural log) below a frame's best are not expanded.
    #[arg(long, default_value_t = 8.0)]
    prune: f32,
}

impl FusionArgs {
    fn decoder(&self, beam: usize) -> Result<(String, sangdam::asr::BeamDecoder)> {
        let lm = match &self.lm {
            Some(p) => Some(std::sync::Arc::new(sangdam::asr::NgramLm::load(p)?)),
            None => None,
        };
        let mut hotwords = Vec::new();
        if self.hotwords {
            for p in sangdam::insights::default_catalogue() {
                hotwords.push(p.name.clone());
                hotwords.extend(p.aliases.iter().cloned());
            }
        }
        if let Some(f) = &self.hotword_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            hotwords.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
        let mut name = format!("beam {beam}");
        if lm.is_some() {
            name.push_str(&format!(" + LM (α {}, β {})", self.alpha, self.beta));
        }
        if !hotwords.is_empty() {
            name.push_str(&format!(
                " + {} hotwords ({})",
                hotwords.len(),
                self.hotword_bonus
            ));
        }
        Ok((
            name,
            sangdam::asr::BeamDecoder {
                beam,
                prune: self.prune,
                lm,
                alpha: self.alpha,
                beta: self.beta,
                hotwords,
                hotword_bonus: self.hotword_bonus,
                ..Default::default()
            },
        ))
    }
}

#[derive(Debug, Subcommand)]
enum LmCmd {
    /// Count syllable n-grams in text and smooth them with interpolated modified
    /// Kneser-Ney; write the box's binary form (and ARPA with --arpa).
    Build {
        /// Output: the binary LM the box loads.
        #[arg(long)]
        out: PathBuf,
        /// Also write the model as ARPA text here.
        #[arg(long)]
        arpa: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        order: usize,
        /// Minimum count to keep an n-gram, per order from 1 (the last repeats).
        #[arg(long, default_value = "1,1,2,2,2")]
        cutoffs: String,
        /// Sentences drawn from the synthetic corpus's call-centre templates.
        #[arg(long, default_value_t = 0)]
        templates: usize,
        #[arg(long, default_value_t = 7)]
        template_seed: u64,
        /// NSMC-layout TSV files (a `document` column).
        #[arg(long)]
        tsv: Vec<PathBuf>,
        /// Plain text files, one utterance per line (your own transcripts).
        #[arg(long)]
        text: Vec<PathBuf>,
        /// Hold out the synthetic corpus's test sentences (same hash and fraction as
        /// `corpus synth --test-fraction`); 0 holds none out.
        #[arg(long, default_value_t = 0.1)]
        test_fraction: f64,
        /// Leave out every sentence of these files (`corpus index` splits or text).
        #[arg(long)]
        exclude: Vec<PathBuf>,
        /// Print the perplexity of these files' sentences.
        #[arg(long)]
        perplexity: Vec<PathBuf>,
    },
    /// Convert an ARPA file (KenLM's lmplz, SRILM) over the box's units (syllables,
    /// `|` between words) to the binary form.
    Convert {
        arpa: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Tune the LM weight and insertion bonus on a split: the model runs once, every
    /// (alpha, beta) pair decodes its scores.
    Tune {
        model: PathBuf,
        #[arg(long)]
        vocab: PathBuf,
        /// A `corpus index` split (the dev split: never the test split).
        #[arg(long)]
        split: PathBuf,
        #[arg(long, default_value_t = usize::MAX)]
        limit: usize,
        #[arg(long, default_value_t = 8)]
        beam: usize,
        #[arg(long, default_value = "0.2,0.35,0.5,0.7,0.9")]
        alphas: String,
        #[arg(long, default_value = "0,0.5,1,1.5,2")]
        betas: String,
        /// Hotword bonuses to try with the best (alpha, beta) ("" for none).
        #[arg(long, default_value = "")]
        bonuses: String,
        #[command(flatten)]
        fusion: FusionArgs,
    },
}

#[derive(Debug, Subcommand)]
enum SentimentCmd {
    /// Train the sentiment classifier on an id<TAB>document<TAB>label file, keep the
    /// best dev epoch, and export model.onnx and model.int8.onnx with tokenizer.json.
    Train(SentimentTrainArgs),
    /// Stack a trained network with a logistic regression over its own hashed n-grams
    /// (blend fitted on the run's dev split) into one network, and export it.
    Fuse {
        /// A `sentiment train` output folder.
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Passes of the linear model over the training rows (best dev pass kept).
        #[arg(long, default_value_t = 6)]
        linear_epochs: usize,
    },
    /// Accuracy of sentiment ONNX models on a labelled file through the firmware's
    /// engine, optionally beside the TF-IDF + logistic regression baseline.
    Eval {
        /// One or more .onnx models sharing one tokenizer.json.
        #[arg(required = true)]
        models: Vec<PathBuf>,
        #[arg(long)]
        tokenizer: PathBuf,
        #[arg(long, default_value = "../shared/data/nsmc-like/test.tsv")]
        test: PathBuf,
        /// Also train and score the TF-IDF baseline on this training file.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Use at most this many test rows.
        #[arg(long, default_value_t = usize::MAX)]
        limit: usize,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Labelled call-centre training rows (the hand-written generator of
    /// sentiment::domain and the speech corpus's template sentences) as an NSMC-style
    /// file, to train on beside (or instead of) movie reviews.
    DomainData {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 30_000)]
        count: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Share of rows taken from `corpus synth`'s polar template sentences.
        #[arg(long, default_value_t = 0.1)]
        synth_fraction: f64,
    },
    /// Three-class scores on the in-domain call-centre set (tests/data/sentiment-calls:
    /// polar accuracy, macro-F1 with a neutral band chosen on its dev split, reliability)
    /// and on the real read-speech sentences, through the firmware's engine.
    Calls {
        /// A sentiment .onnx model.
        model: PathBuf,
        #[arg(long)]
        tokenizer: PathBuf,
        #[arg(long, default_value = "tests/data/sentiment-calls/calls.tsv")]
        set: PathBuf,
        /// ../shared/data/speech-real-dev (evaluation only); skipped when missing.
        #[arg(long, default_value = "../shared/data/speech-real-dev")]
        real: PathBuf,
        /// Also train the TF-IDF + logistic regression baseline on this file and score it.
        #[arg(long)]
        baseline: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write each item's id, split, case, label, p(positive) and three-class
        /// prediction (the model's, at the band chosen on dev) as TSV.
        #[arg(long)]
        predictions: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct SentimentTrainArgs {
    #[arg(long, default_value = "../shared/data/nsmc-like/train.tsv")]
    train: PathBuf,
    /// Output folder (keep it out of git).
    #[arg(long, default_value = "out/sentiment-ko")]
    out: PathBuf,
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Stop after this many dev evaluations (every half epoch) without improvement.
    #[arg(long, default_value_t = 3)]
    patience: usize,
    #[arg(long, default_value_t = 0.05)]
    dev_fraction: f64,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Characters longer texts are cut to (the model's limit).
    #[arg(long, default_value_t = 200)]
    max_chars: usize,
    #[arg(long, default_value_t = 4)]
    ngram_max: usize,
    #[arg(long, default_value_t = 1 << 18)]
    ngram_buckets: u32,
    #[arg(long, default_value_t = 48)]
    char_dim: usize,
    /// Convolution widths, comma-separated (odd); "" switches the CNN branch off.
    #[arg(long, default_value = "3,5")]
    kernels: String,
    #[arg(long, default_value_t = 128)]
    filters: usize,
    /// N-gram embedding width; 0 switches the n-gram branch off.
    #[arg(long, default_value_t = 16)]
    ngram_dim: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    #[arg(long, default_value_t = 0.3)]
    dropout: f32,
    /// Add the linear ("wide") n-gram path: one more n-gram table column summed into
    /// the positive logit.
    #[arg(long)]
    wide: bool,
    /// Train on the first N rows only (0: all), for quick trials.
    #[arg(long, default_value_t = 0)]
    limit: usize,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// Folder with train.jsonl, dev.jsonl and vocab.json (from `corpus index`).
    #[arg(long, default_value = "corpus-index")]
    data: PathBuf,
    /// Hugging Face checkpoint folder to fine-tune (config.json + model.safetensors).
    #[arg(long, conflicts_with = "scratch")]
    checkpoint: Option<PathBuf>,
    /// Train from scratch with the architecture in this config.json.
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Checkpoint folder (keep it out of git: /ckpt is ignored).
    #[arg(long, default_value = "ckpt/run")]
    out: PathBuf,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Stop after this many optimiser steps (0: all epochs).
    #[arg(long, default_value_t = 0)]
    max_steps: usize,
    #[arg(long, default_value_t = 2)]
    batch_size: usize,
    /// Batches whose gradients are summed before each optimiser step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 500)]
    warmup_steps: usize,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Clip the global gradient norm to this (0: off).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    #[arg(long, default_value_t = 246_000)]
    max_samples: usize,
    #[arg(long, default_value_t = 256)]
    max_labels: usize,
    /// Do not train the convolutional feature encoder.
    #[arg(long)]
    freeze_feature_encoder: bool,
    /// First epoch from short to long utterances (SortaGrad).
    #[arg(long)]
    sorta_grad: bool,
    /// Let the model see each batch's zero padding as signal, with CTC over every padded
    /// frame (transformers without `attention_mask`). Default: padding is masked.
    #[arg(long)]
    no_attention_mask: bool,
    /// Apply SpecAugment (when the config turns it on) only from this step on.
    #[arg(long, default_value_t = 0)]
    spec_augment_from: usize,
    /// Train on the first CUDA GPU (libtorch's CUDA build with `--features torch`, or
    /// candle with `--features cuda`).
    #[arg(long)]
    cuda: bool,
    /// Kernels that run the step: torch (PyTorch's, through libtorch; the default when
    /// built with `--features torch`) or candle.
    #[arg(long)]
    backend: Option<sangdam_host::engine::Backend>,
    /// Threads for the step (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Dev CER every N steps (0: never).
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 500)]
    save_every: usize,
    /// Dev utterances used for the CER.
    #[arg(long, default_value_t = 200)]
    dev_limit: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Progress line every N steps.
    #[arg(long, default_value_t = 10)]
    log_every: usize,
    /// Write each optimiser step's wall seconds and audio seconds here (TSV), for
    /// scripts/bench-train.
    #[arg(long)]
    step_times: Option<PathBuf>,
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
        /// A TSV with a `document` column (../shared/data/nsmc-like/train.tsv) whose
        /// sentences are mixed in for vocabulary breadth.
        #[arg(long)]
        extra_text: Option<PathBuf>,
        /// Fraction of utterances taken from --extra-text.
        #[arg(long, default_value_t = 0.2)]
        extra_fraction: f64,
    },
    /// Make a two-channel 8 kHz sample call (agent on channel 0, customer on channel 1)
    /// in the corpus's telephone channel, spoken by the held-out test voices.
    Call {
        /// Output .wav.
        out: PathBuf,
        /// Lines of the call, each `A:text` (agent) or `C:text` (customer), in order.
        #[arg(required = true)]
        lines: Vec<String>,
        #[arg(long, default_value_t = 0.6)]
        gap: f64,
        #[arg(long, default_value_t = 30.0)]
        snr: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
        Command::Sentiment(cmd) => sentiment_command(cmd),
        Command::Corpus(cmd) => corpus_command(cmd),
        Command::Export { checkpoint, out } => {
            let bytes = sangdam_host::onnx::export_to(&checkpoint, &out)?;
            println!("{} ({:.2} MB)", out.display(), bytes as f64 / 1e6);
            Ok(())
        }
        Command::Import { model, config, out } => {
            let (tensors, vocab) = sangdam_host::onnx::import::import_dir(&model, &config, &out)?;
            println!("{}: {tensors} tensors, vocabulary {vocab}", out.display());
            Ok(())
        }
        Command::Quantize {
            model,
            out,
            variant,
        } => {
            let variant = sangdam_host::onnx::quantize::Variant::parse(&variant)?;
            let (s, bytes) = sangdam_host::onnx::quantize::quantize_file(&model, &out, variant)?;
            println!(
                "{} {}: {} MatMul and {} Conv quantized, {} Conv kept f32, {:.2} MB",
                variant.name(),
                out.display(),
                s.matmuls,
                s.convs,
                s.kept_f32,
                bytes as f64 / 1e6
            );
            Ok(())
        }
        Command::Package(a) => package_command(a),
        Command::Eval(a) => eval_command(a),
        Command::Lm(cmd) => lm_command(cmd),
        Command::Train(a) => train_command(a),
    }
}

fn sentiment_command(cmd: SentimentCmd) -> Result<()> {
    match cmd {
        SentimentCmd::Train(a) => sentiment_train(a),
        SentimentCmd::Fuse {
            run,
            out,
            linear_epochs,
        } => {
            let r = sangdam_host::sentiment::fuse::fuse(&run, &out, linear_epochs, false)?;
            let (f32_path, int8_path, _) = sangdam_host::sentiment::export::export_dir(&out)?;
            println!(
            "dev accuracy: network {:.2}%, linear {:.2}%, fused {:.2}% (margin = {:.3} network + {:.3} linear + {:.3}); {} and {}",
            r.network_dev_accuracy * 100.0,
            r.linear_dev_accuracy * 100.0,
            r.fused_dev_accuracy * 100.0,
            r.a,
            r.c,
            r.b,
            f32_path.display(),
            int8_path.display()
        );
            Ok(())
        }
        SentimentCmd::Eval {
            models,
            tokenizer,
            test,
            baseline,
            limit,
            json,
        } => {
            let report = sangdam_host::sentiment::eval::evaluate(
                &models,
                &tokenizer,
                &test,
                baseline.as_deref(),
                limit,
            )?;
            print!("{}", report.markdown());
            if let Some(j) = json {
                std::fs::write(&j, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("cannot write {}", j.display()))?;
            }
            Ok(())
        }
        SentimentCmd::DomainData {
            out,
            count,
            seed,
            synth_fraction,
        } => {
            let r = sangdam_host::sentiment::write_domain_tsv(&out, count, seed, synth_fraction)?;
            println!(
            "{}: {} rows ({} negative, {} neutral, {} positive; {} from corpus synth's templates)",
            out.display(),
            r.negative + r.neutral + r.positive,
            r.negative,
            r.neutral,
            r.positive,
            r.from_synth
        );
            Ok(())
        }
        SentimentCmd::Calls {
            model,
            tokenizer,
            set,
            real,
            baseline,
            json,
            predictions,
        } => {
            let reports =
                sangdam_host::sentiment::calls::run(&sangdam_host::sentiment::calls::CallsRun {
                    model: &model,
                    tokenizer: &tokenizer,
                    set: &set,
                    real: &real,
                    baseline: baseline.as_deref(),
                    predictions: predictions.as_deref(),
                })?;
            for r in &reports {
                println!("{}", r.markdown());
            }
            if let Some(j) = json {
                std::fs::write(&j, serde_json::to_string_pretty(&reports)?)
                    .with_context(|| format!("cannot write {}", j.display()))?;
            }
            Ok(())
        }
    }
}

fn corpus_command(cmd: CorpusCmd) -> Result<()> {
    match cmd {
        CorpusCmd::Index {
            root,
            out,
            spelling,
            speaker_from,
            jamo,
            dev,
            test,
            test_speakers,
        } => {
            let r = corpus::write_index(
                &root,
                &out,
                &corpus::IndexSettings {
                    spelling,
                    speaker_from,
                    jamo,
                    dev,
                    test,
                    test_speakers,
                },
            )?;
            for (name, n, hours) in &r.splits {
                println!("{name:<5} {n:>7} utterances {hours:>8.2} h");
            }
            println!(
                "vocab {:>7} tokens -> {}",
                r.vocab_tokens,
                r.vocab_path.display()
            );
            let idx = &r.index;
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
        CorpusCmd::Call {
            out,
            lines,
            gap,
            snr,
            seed,
        } => {
            let lines = lines
                .iter()
                .map(|l| {
                    let (who, text) = l
                        .split_once(':')
                        .with_context(|| format!("line {l:?}: write A:text or C:text"))?;
                    let channel = match who.trim() {
                        "A" | "a" => 0,
                        "C" | "c" => 1,
                        other => anyhow::bail!(
                            "line {l:?}: speaker {other:?} is not A (agent) or C (customer)"
                        ),
                    };
                    Ok(corpus::synth::CallLine {
                        channel,
                        text: text.trim().to_string(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let secs = corpus::synth::synthesize_call(&out, &lines, gap, snr, seed)?;
            println!("{} ({secs:.1} s, 8 kHz, 2 channels)", out.display());
            Ok(())
        }
        CorpusCmd::Synth {
            out,
            count,
            seed,
            test_fraction,
            extra_text,
            extra_fraction,
        } => {
            let extra_sentences = match &extra_text {
                Some(p) => corpus::synth::sentences_from_tsv(p)?,
                None => Vec::new(),
            };
            let settings = corpus::synth::SynthSettings {
                count,
                seed,
                test_fraction,
                extra_sentences,
                extra_fraction,
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

fn package_command(a: PackageArgs) -> Result<()> {
    let PackageArgs {
        model,
        models_dir,
        name,
        kind,
        vocab,
        sample_rate,
        quantization,
        made,
        scores,
        alpha,
        beta,
        hotword_bonus,
        neutral_band,
    } = a;
    let kind = match kind.as_str() {
        "asr-ctc" => sangdam::models::ModelKind::AsrCtc,
        "sentiment" => sangdam::models::ModelKind::Sentiment,
        "ngram-lm" => sangdam::models::ModelKind::NgramLm,
        other => anyhow::bail!("--kind {other}: use asr-ctc, sentiment or ngram-lm"),
    };
    let decoder = match (alpha, beta) {
        (Some(alpha), Some(beta)) => Some(sangdam::models::DecoderDefaults {
            alpha,
            beta,
            beam: None,
            hotword_bonus,
        }),
        (None, None) => None,
        _ => anyhow::bail!("give --alpha and --beta together"),
    };
    let scores = scores
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--score {s}: write name=value"))?;
            Ok((
                k.to_string(),
                v.parse::<f64>()
                    .with_context(|| format!("--score {s}: not a number"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let e = sangdam_host::package::package(&sangdam_host::package::Package {
        models_dir,
        name,
        kind,
        model,
        vocab,
        labels: (kind == sangdam::models::ModelKind::Sentiment)
            .then(|| vec!["negative".to_string(), "positive".to_string()]),
        sample_rate: (kind == sangdam::models::ModelKind::AsrCtc).then_some(sample_rate),
        quantization,
        made,
        scores,
        decoder,
        neutral_band,
    })?;
    println!(
        "{} -> {} ({} bytes, sha256 {})",
        e.name,
        e.file.display(),
        e.bytes,
        e.sha256
    );
    Ok(())
}

fn eval_command(a: EvalArgs) -> Result<()> {
    let EvalArgs {
        models,
        vocab,
        split,
        real,
        real_dev,
        limit,
        json,
        beam,
        fusion,
    } = a;
    let (decoder_name, decoder): (String, std::sync::Arc<dyn sangdam::asr::CtcDecoder>) =
        if beam > 0 {
            let (n, d) = fusion.decoder(beam)?;
            (n, std::sync::Arc::new(d))
        } else {
            (
                "greedy".into(),
                std::sync::Arc::new(sangdam::asr::GreedyDecoder),
            )
        };
    let rows = sangdam_host::eval::run(&sangdam_host::eval::EvalRun {
        models: &models,
        vocab: &vocab,
        splits: &split,
        real: real.as_deref(),
        real_dev: real_dev.as_deref(),
        limit,
        decoder_name: &decoder_name,
        decoder,
    })?;
    print!("{}", sangdam_host::eval::table(&rows));
    for r in &rows {
        for (reference, hyp) in &r.examples {
            println!(
                "  {} / {}: «{reference}» → «{hyp}»",
                r.set,
                std::path::Path::new(&r.model)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            );
        }
    }
    if let Some(j) = json {
        std::fs::write(&j, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}

fn train_command(a: TrainArgs) -> Result<()> {
    if a.threads > 0 {
        // candle sizes its thread pools from this variable when they start.
        std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    }
    let start = match (a.checkpoint, a.scratch) {
        (Some(c), None) => Start::Checkpoint(c),
        (None, Some(s)) => Start::Scratch(s),
        _ => anyhow::bail!(
            "give --checkpoint DIR (a Hugging Face wav2vec2 folder to fine-tune) or --scratch CONFIG.json"
        ),
    };
    let settings = TrainSettings {
        train: a.data.join("train.jsonl"),
        dev: Some(a.data.join("dev.jsonl")),
        vocab: a.data.join("vocab.json"),
        start,
        out: a.out,
        resume: a.resume,
        epochs: a.epochs,
        max_steps: a.max_steps,
        batch_size: a.batch_size,
        grad_accum: a.grad_accum,
        lr: a.lr,
        warmup_steps: a.warmup_steps,
        weight_decay: a.weight_decay,
        max_grad_norm: a.max_grad_norm,
        max_samples: a.max_samples,
        max_labels: a.max_labels,
        freeze_feature_encoder: a.freeze_feature_encoder,
        sorta_grad: a.sorta_grad,
        padding: if a.no_attention_mask {
            Padding::Unmasked
        } else {
            Padding::Masked
        },
        spec_augment_from: a.spec_augment_from,
        cuda: a.cuda,
        backend: a
            .backend
            .unwrap_or_else(sangdam_host::engine::Backend::preferred),
        threads: a.threads,
        eval_every: a.eval_every,
        save_every: a.save_every,
        dev_limit: a.dev_limit,
        seed: a.seed,
        log_every: a.log_every,
        step_times: a.step_times,
        quiet: false,
    };
    let st = train::train(&settings)?;
    let peak = match sangdam_host::eval::peak_rss_mb() {
        mb if mb > 0.0 => format!("{mb:.0} MiB"),
        _ => "-".to_string(),
    };
    println!(
        "trained {} steps on {:.2} h of audio in {:.1} min ({:.1} audio s per s, peak RSS {peak}); best dev CER {}; model in {}",
        st.step,
        st.audio_seconds / 3600.0,
        st.train_seconds / 60.0,
        st.audio_seconds / st.train_seconds.max(1e-9),
        st.best_cer.map_or("-".into(), |c| format!("{:.2}%", c * 100.0)),
        settings.out.join("final").display()
    );
    Ok(())
}

fn floats(list: &str) -> Result<Vec<f32>> {
    list.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().with_context(|| format!("{x:?} is not a number")))
        .collect()
}

fn lm_command(cmd: LmCmd) -> Result<()> {
    use sangdam_host::lm;
    match cmd {
        LmCmd::Build {
            out,
            arpa,
            order,
            cutoffs,
            templates,
            template_seed,
            tsv,
            text,
            test_fraction,
            exclude,
            perplexity,
        } => {
            let src = lm::TextSources {
                templates,
                template_seed,
                tsv,
                text,
                test_fraction,
                exclude,
            };
            let (sentences, dropped) = lm::gather(&src)?;
            anyhow::ensure!(
                !sentences.is_empty(),
                "no text: give --templates N, --tsv FILE or --text FILE"
            );
            let cutoffs = cutoffs
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<u32>()
                        .with_context(|| format!("--cutoffs: {c:?} is not a count"))
                })
                .collect::<Result<Vec<_>>>()?;
            let t = std::time::Instant::now();
            let model = lm::build(&sentences, &lm::BuildSettings { order, cutoffs })?;
            let bin = model.to_binary();
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&out, &bin)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if let Some(a) = &arpa {
                std::fs::write(a, model.to_arpa())
                    .with_context(|| format!("cannot write {}", a.display()))?;
            }
            println!(
                "{} sentences ({dropped} held out), {} units, order {}, n-grams per order {:?}, {:.1} s",
                sentences.len(),
                model.units(),
                model.order(),
                model.counts(),
                t.elapsed().as_secs_f64()
            );
            println!("{} ({} bytes)", out.display(), bin.len());
            for p in &perplexity {
                let s = lm::sentences_of(p)?;
                println!(
                    "perplexity per unit on {} ({} sentences): {:.2}",
                    p.display(),
                    s.len(),
                    lm::perplexity(&model, &s)
                );
            }
            Ok(())
        }
        LmCmd::Convert { arpa, out } => {
            let model = sangdam::asr::NgramLm::load(&arpa)?;
            let bin = model.to_binary();
            std::fs::write(&out, &bin)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{}: order {}, {} units, n-grams {:?} -> {} ({} bytes)",
                arpa.display(),
                model.order(),
                model.units(),
                model.counts(),
                out.display(),
                bin.len()
            );
            Ok(())
        }
        LmCmd::Tune {
            model,
            vocab,
            split,
            limit,
            beam,
            alphas,
            betas,
            bonuses,
            fusion,
        } => {
            anyhow::ensure!(fusion.lm.is_some(), "lm tune needs --lm");
            let v = sangdam::asr::Vocab::load(&vocab)?;
            let mut items = sangdam_host::data::read_split(&split)?;
            items.truncate(limit);
            let logits = sangdam_host::eval::logits_of(&model, &v, &items)?;
            let audio: f64 = logits.iter().map(|x| x.2).sum();
            println!("| decoder | CER % | WER % | products | decode s / audio s |\n|---|---:|---:|---:|---:|");
            let row = |name: &str, d: &dyn sangdam::asr::CtcDecoder| {
                let (cer, wer, p, secs) = sangdam_host::eval::score_decoder(d, &v, &logits);
                println!(
                    "| {name} | {:.2} | {:.2} | {}/{} | {:.5} |",
                    cer * 100.0,
                    wer * 100.0,
                    p.1,
                    p.0,
                    secs / audio
                );
                cer
            };
            row("greedy", &sangdam::asr::GreedyDecoder);
            let plain = sangdam::asr::BeamDecoder {
                beam,
                prune: fusion.prune,
                ..Default::default()
            };
            row(&format!("beam {beam}"), &plain);
            let (_, base) = fusion.decoder(beam)?;
            let mut best = (f64::INFINITY, 0.0f32, 0.0f32);
            for &a in &floats(&alphas)? {
                for &b in &floats(&betas)? {
                    let d = sangdam::asr::BeamDecoder {
                        alpha: a,
                        beta: b,
                        hotwords: Vec::new(),
                        ..base.clone()
                    };
                    let cer = row(&format!("beam {beam} + LM α {a} β {b}"), &d);
                    if cer < best.0 {
                        best = (cer, a, b);
                    }
                }
            }
            println!(
                "\nbest on {}: alpha {} beta {} (CER {:.2}%)",
                split.display(),
                best.1,
                best.2,
                best.0 * 100.0
            );
            let bonuses = floats(&bonuses)?;
            if !bonuses.is_empty() {
                let mut hot = base.hotwords.clone();
                if hot.is_empty() {
                    for p in sangdam::insights::default_catalogue() {
                        hot.push(p.name.clone());
                        hot.extend(p.aliases.iter().cloned());
                    }
                }
                for &h in &bonuses {
                    let d = sangdam::asr::BeamDecoder {
                        alpha: best.1,
                        beta: best.2,
                        hotwords: hot.clone(),
                        hotword_bonus: h,
                        ..base.clone()
                    };
                    row(
                        &format!("beam {beam} + LM α {} β {} + hotwords {h}", best.1, best.2),
                        &d,
                    );
                }
            }
            Ok(())
        }
    }
}

fn sentiment_train(a: SentimentTrainArgs) -> Result<()> {
    use sangdam_host::sentiment::train::{train, SentimentSettings};
    let kernels = a
        .kernels
        .split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            k.trim()
                .parse::<usize>()
                .with_context(|| format!("--kernels {}: {k} is not a width", a.kernels))
        })
        .collect::<Result<Vec<_>>>()?;
    let s = SentimentSettings {
        train: a.train,
        out: a.out.clone(),
        dev_fraction: a.dev_fraction,
        seed: a.seed,
        epochs: a.epochs,
        patience: a.patience,
        batch: a.batch_size,
        lr: a.lr,
        max_chars: a.max_chars,
        ngram_max: a.ngram_max,
        ngram_buckets: a.ngram_buckets,
        char_dim: a.char_dim,
        kernels,
        filters: a.filters,
        ngram_dim: a.ngram_dim,
        hidden: a.hidden,
        dropout: a.dropout,
        wide: a.wide,
        limit: a.limit,
        ..SentimentSettings::default()
    };
    let report = train(&s)?;
    let (f32_path, int8_path, summary) = sangdam_host::sentiment::export::export_dir(&a.out)?;
    println!(
        "best dev accuracy {:.2}% at step {} of {} ({:.0} s); {} and {} ({} tables, {} MatMul int8)",
        report.best_dev_accuracy * 100.0,
        report.best_step,
        report.steps,
        report.seconds,
        f32_path.display(),
        int8_path.display(),
        summary.gathers,
        summary.matmuls
    );
    Ok(())
}
