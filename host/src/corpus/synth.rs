//! A synthetic Korean call-centre corpus: the project's own sentence templates across the
//! three domains of the seed (finance/cards, telecom/sales, education), satisfied and
//! complaining, spoken by espeak-ng's Korean voice with varied voice variants, speed and
//! pitch, then put through a telephone channel (300-3400 Hz band and μ-law at 8 kHz with
//! sox, back to 16 kHz, line noise at a random SNR) and written in the AI Hub layout.
//!
//! The test split is held out twice: its sentences are never spoken in train/dev, and
//! its voices are never used there either.

use std::path::{Path, PathBuf};
use std::process::Command;

use sangdam::audio::{CallFile, WavWriter, WriteFormat};
use serde::{Deserialize, Serialize};

use super::numbers::{month, sino};
use crate::rng::Rng;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    #[error("{tool} failed or is missing ({detail}): install it with `apt-get install espeak-ng sox` (scripts/setup does)")]
    Tool { tool: &'static str, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the synthesised audio {path}: {message}")]
    Audio { path: PathBuf, message: String },
}

/// espeak-ng Korean voice variants used for training, and the ones held out for test.
pub const TRAIN_VOICES: &[&str] = &["m1", "m2", "m3", "m5", "f1", "f2", "f3", "f5"];
pub const TEST_VOICES: &[&str] = &["m4", "f4"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthSettings {
    pub count: usize,
    pub seed: u64,
    /// Fraction of distinct sentences held out for the test split.
    pub test_fraction: f64,
    /// SNR range of the line noise, dB.
    pub snr_db: (f64, f64),
    /// Extra sentences for vocabulary breadth (e.g. the text column of
    /// `../shared/data/nsmc-like/train.tsv`), used for `extra_fraction` of utterances.
    #[serde(default)]
    pub extra_sentences: Vec<String>,
    #[serde(default)]
    pub extra_fraction: f64,
}

/// Sentences usable for synthesis from a TSV with a `document` column (NSMC's layout):
/// Hangul and spaces only (digits and Latin would be read out in ways the transcript
/// cannot show), 4 to 40 characters, punctuation dropped.
pub fn sentences_from_tsv(path: &Path) -> Result<Vec<String>, SynthError> {
    let text = std::fs::read_to_string(path).map_err(|source| SynthError::Write {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split('\t')
        .position(|h| h == "document")
        .unwrap_or(1);
    let mut out = Vec::new();
    for l in lines {
        let Some(doc) = l.split('\t').nth(col) else {
            continue;
        };
        let cleaned: String = doc
            .chars()
            .filter(|c| !matches!(c, '.' | ',' | '!' | '?' | '~' | '^' | '"' | '\''))
            .collect();
        let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = cleaned.chars().count();
        let hangul_only = cleaned
            .chars()
            .all(|c| c == ' ' || ('\u{AC00}'..='\u{D7A3}').contains(&c));
        if hangul_only && (4..=40).contains(&n) {
            out.push(cleaned);
        }
    }
    Ok(out)
}

impl Default for SynthSettings {
    fn default() -> Self {
        SynthSettings {
            count: 200,
            seed: 1,
            test_fraction: 0.1,
            snr_db: (15.0, 35.0),
            extra_sentences: Vec::new(),
            extra_fraction: 0.0,
        }
    }
}

/// What was written, for the caller's report and for `corpus index --test-speakers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthSummary {
    pub utterances: usize,
    pub test_utterances: usize,
    pub seconds: f64,
    pub test_speakers: Vec<String>,
}

struct Domain {
    name: &'static str,
    products: &'static [&'static str],
    positive: &'static [&'static str],
    negative: &'static [&'static str],
}

const DOMAINS: &[Domain] = &[
    Domain {
        name: "금융",
        products: &[
            "쉐어링 카드",
            "신용 카드",
            "체크 카드",
            "적금 통장",
            "모바일 앱",
            "자동 이체",
        ],
        positive: &[
            "{product} 덕분에 정말 편해졌어요",
            "{product} 혜택이 좋아서 만족합니다",
            "친절하게 설명해 주셔서 감사합니다",
            "{amount} 원 결제가 바로 처리되어서 좋네요",
            "{date}에 신청한 {product} 잘 받았어요",
            "앱으로 한도 확인이 쉬워서 좋아요",
        ],
        negative: &[
            "{product} 한도가 너무 낮아요",
            "카드 한도를 {amount} 원으로 올리고 싶은데 안 된대요",
            "{date}에 {amount} 원이 두 번 결제됐어요",
            "본인 확인이 너무 오래 걸려요",
            "{product} 발급 기간이 너무 길어요",
            "몇 번이나 전화했는데 아직도 처리가 안 됐어요",
        ],
    },
    Domain {
        name: "통신",
        products: &[
            "무제한 요금제",
            "인터넷 상품",
            "가족 결합",
            "오 지 요금제",
            "휴대폰 보험",
        ],
        positive: &[
            "{product}으로 바꾸니까 요금이 줄었어요",
            "기사님이 {date}에 바로 와 주셔서 좋았어요",
            "{product} 속도가 빨라서 만족해요",
            "상담원분이 친절해서 기분이 좋네요",
        ],
        negative: &[
            "인터넷이 {number} 번이나 끊겼어요",
            "요금이 {amount} 원이나 더 나왔어요",
            "{product} 해지하고 싶은데 위약금이 너무 커요",
            "{date}부터 전화가 잘 안 돼요",
            "약정 설명을 제대로 못 들었어요",
        ],
    },
    Domain {
        name: "교육",
        products: &[
            "온라인 강의",
            "수강권",
            "영어 회화 과정",
            "자격증 과정",
            "방과 후 수업",
        ],
        positive: &[
            "{product} 내용이 알차서 좋아요",
            "선생님 설명이 쉬워서 아이가 좋아해요",
            "{date}에 시작하는 {product} 등록했어요",
            "환불 처리가 빨라서 고맙습니다",
        ],
        negative: &[
            "{product} 환불을 받고 싶어요",
            "수강료 {amount} 원을 냈는데 강의가 안 열려요",
            "{product} 일정이 자꾸 바뀌어서 불편해요",
            "{number} 주째 답변이 없어요",
        ],
    },
];

/// Renders one sentence: (domain, sentiment, text).
pub fn sentence(rng: &mut Rng) -> (&'static str, &'static str, String) {
    let d = rng.pick(DOMAINS);
    let (sentiment, templates) = if rng.below(2) == 0 {
        ("positive", d.positive)
    } else {
        ("negative", d.negative)
    };
    let mut t = rng.pick(templates).to_string();
    let amounts = [
        5_000u64, 12_000, 30_000, 45_000, 100_000, 250_000, 1_000_000, 3_000_000,
    ];
    let product: &str = d.products[rng.below(d.products.len())];
    t = t.replace("{product}", product);
    t = t.replace("{amount}", &sino(*rng.pick(&amounts)));
    t = t.replace("{number}", &sino(2 + rng.below(9) as u64));
    let date = format!(
        "{} {}일",
        month(1 + rng.below(12) as u32),
        sino(1 + rng.below(28) as u64)
    );
    t = t.replace("{date}", &date);
    (d.name, sentiment, t)
}

/// Whether `text` is one of the sentences held out for the test split: a hash of the
/// text, so the same sentence is held out wherever it comes from (the corpus, the
/// language model's text).
pub fn is_test_sentence(text: &str, test_fraction: f64) -> bool {
    stable_unit(text) < test_fraction
}

fn stable_unit(text: &str) -> f64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let mut r = Rng::new(h);
    r.unit()
}

/// One utterance to make: everything drawn from the corpus's random stream, so the
/// corpus is the same whatever the number of workers that render it.
struct Plan {
    index: usize,
    domain: &'static str,
    sentiment: &'static str,
    text: String,
    test: bool,
    voice: &'static str,
    speed: usize,
    pitch: usize,
    snr: f64,
    noise_seed: u64,
}

/// Writes `settings.count` utterances under `root` in the AI Hub layout, rendered by
/// one espeak-ng/sox worker per CPU core.
pub fn synthesize(root: &Path, settings: &SynthSettings) -> Result<SynthSummary, SynthError> {
    let plans = plan(settings);
    synthesize_plans(root, settings, plans)
}

/// The text of every utterance `synthesize` would write with `settings`, and whether it
/// is in the test split; nothing is rendered.
pub fn planned_sentences(settings: &SynthSettings) -> Vec<(String, bool)> {
    plan(settings)
        .into_iter()
        .map(|p| (p.text, p.test))
        .collect()
}

fn plan(settings: &SynthSettings) -> Vec<Plan> {
    let mut rng = Rng::new(settings.seed);
    let mut plans = Vec::with_capacity(settings.count);
    for index in 0..settings.count {
        let (domain, sentiment, text) =
            if !settings.extra_sentences.is_empty() && rng.unit() < settings.extra_fraction {
                (
                    "일반",
                    "review",
                    rng.pick(&settings.extra_sentences).clone(),
                )
            } else {
                sentence(&mut rng)
            };
        let test = is_test_sentence(&text, settings.test_fraction);
        let voice = *rng.pick(if test { TEST_VOICES } else { TRAIN_VOICES });
        // Speaking rate 120-189 words a minute and pitch 25-79: wider than one voice
        // variant's range, so a model cannot lean on how a few voices sound.
        let speed = 120 + rng.below(70);
        let pitch = 25 + rng.below(55);
        let snr = settings.snr_db.0 + rng.unit() * (settings.snr_db.1 - settings.snr_db.0);
        let noise_seed = rng.next_u64();
        plans.push(Plan {
            index,
            domain,
            sentiment,
            text,
            test,
            voice,
            speed,
            pitch,
            snr,
            noise_seed,
        });
    }
    plans
}

fn synthesize_plans(
    root: &Path,
    settings: &SynthSettings,
    plans: Vec<Plan>,
) -> Result<SynthSummary, SynthError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let results: Vec<Result<Vec<f64>, SynthError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let plans = &plans;
                scope.spawn(move || {
                    let tmp = root.join(format!(".synth-tmp-{}-{w}", settings.seed));
                    mkdir(&tmp)?;
                    let mut seconds = Vec::new();
                    for p in plans.iter().skip(w).step_by(workers) {
                        seconds.push(render(root, &tmp, settings.seed, p)?);
                    }
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(seconds)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("synthesis worker panicked"))
            .collect()
    });
    let mut summary = SynthSummary {
        utterances: plans.len(),
        test_utterances: plans.iter().filter(|p| p.test).count(),
        seconds: 0.0,
        test_speakers: TEST_VOICES.iter().map(|v| format!("ko-{v}")).collect(),
    };
    for r in results {
        summary.seconds += r?.iter().sum::<f64>();
    }
    Ok(summary)
}

/// Speaks one planned utterance into the corpus tree; returns its length in seconds.
fn render(root: &Path, tmp: &Path, seed: u64, p: &Plan) -> Result<f64, SynthError> {
    let speaker = format!("ko-{}", p.voice);
    let key = format!("SYN{seed}_{:06}_{}", p.index, p.sentiment);
    let audio_dir = root.join("원천데이터").join(p.domain).join(&speaker);
    let label_dir = root.join("라벨링데이터").join(p.domain).join(&speaker);
    mkdir(&audio_dir)?;
    mkdir(&label_dir)?;
    let raw = tmp.join("espeak.wav");
    let tel = tmp.join("tel.wav");
    speak_through_telephone(p.voice, p.speed, p.pitch, &p.text, &raw, &tel)?;
    let out = audio_dir.join(format!("{key}.wav"));
    let mut noise = Rng::new(p.noise_seed);
    let seconds = back_to_16k_with_noise(&tel, &out, p.snr, &mut noise)?;
    let label = label_dir.join(format!("{key}.txt"));
    std::fs::write(&label, format!("{}\n", p.text)).map_err(|source| SynthError::Write {
        path: label,
        source,
    })?;
    Ok(seconds)
}

/// One line of a sample call: who speaks (0 = agent channel, 1 = customer channel) and
/// what.
#[derive(Debug, Clone)]
pub struct CallLine {
    pub channel: usize,
    pub text: String,
}

/// Renders a two-channel 8 kHz call (agent on channel 0, customer on channel 1) in the
/// same telephone channel as the corpus, spoken by the held-out test voices (agent
/// `f4`, customer `m4`), turns separated by `gap` seconds, with line noise on both
/// channels at `snr_db`. Returns the call's length in seconds.
pub fn synthesize_call(
    out: &Path,
    lines: &[CallLine],
    gap: f64,
    snr_db: f64,
    seed: u64,
) -> Result<f64, SynthError> {
    let mut rng = Rng::new(seed);
    let tmp = out.with_extension("synth-tmp");
    mkdir(&tmp)?;
    let rate = 8_000usize;
    let mut chans: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let mut t = (0.4 * rate as f64) as usize;
    for line in lines {
        let voice = if line.channel == 0 {
            TEST_VOICES[1]
        } else {
            TEST_VOICES[0]
        };
        let raw = tmp.join("espeak.wav");
        let tel = tmp.join("tel.wav");
        speak_through_telephone(voice, 150, 50, &line.text, &raw, &tel)?;
        let mut r = sangdam::audio::WavReader::open(&tel).map_err(|e| SynthError::Audio {
            path: tel.clone(),
            message: e.to_string(),
        })?;
        let mut bufs = vec![Vec::new()];
        while r
            .read_frames(&mut bufs, 4096)
            .map_err(|e| SynthError::Audio {
                path: tel.clone(),
                message: e.to_string(),
            })?
            > 0
        {}
        let speech = &bufs[0];
        let ch = line.channel.min(1);
        for c in &mut chans {
            c.resize(t + speech.len(), 0.0);
        }
        chans[ch][t..t + speech.len()].copy_from_slice(speech);
        t += speech.len() + (gap * rate as f64) as usize;
    }
    for c in &mut chans {
        c.resize(t, 0.0);
    }
    // Noise relative to the louder channel's speech level, on both channels.
    let rms = chans
        .iter()
        .map(|c| {
            (c.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / c.len().max(1) as f64).sqrt()
        })
        .fold(0.0, f64::max);
    let a = rms / 10f64.powf(snr_db / 20.0) * 3f64.sqrt();
    let mut inter = Vec::with_capacity(t * 2);
    for i in 0..t {
        for c in &chans {
            inter.push(c[i] + ((rng.unit() * 2.0 - 1.0) * a) as f32);
        }
    }
    let audio_err = |message: String| SynthError::Audio {
        path: out.to_owned(),
        message,
    };
    let mut w = WavWriter::create(out, rate as u32, 2, WriteFormat::Pcm16)
        .map_err(|e| audio_err(e.to_string()))?;
    w.write_interleaved(&inter)
        .map_err(|e| audio_err(e.to_string()))?;
    w.finish().map_err(|e| audio_err(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(t as f64 / rate as f64)
}

/// Reads the 8 kHz mu-law file through the firmware's reader and resampler, adds white
/// noise at `snr` dB below the speech's RMS, and writes 16 kHz 16-bit PCM.
fn back_to_16k_with_noise(
    tel: &Path,
    out: &Path,
    snr: f64,
    rng: &mut Rng,
) -> Result<f64, SynthError> {
    let audio_err = |message: String| SynthError::Audio {
        path: tel.to_owned(),
        message,
    };
    let mut f = CallFile::open(tel).map_err(|e| audio_err(e.to_string()))?;
    let mut x = Vec::new();
    while let Some(b) = f.next_block().map_err(|e| audio_err(e.to_string()))? {
        x.extend_from_slice(&b[0]);
    }
    let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    // Uniform noise in [-a, a] has RMS a/sqrt(3).
    let a = rms / 10f64.powf(snr / 20.0) * 3f64.sqrt();
    for v in &mut x {
        *v += ((rng.unit() * 2.0 - 1.0) * a) as f32;
    }
    let mut w = WavWriter::create(out, 16_000, 1, WriteFormat::Pcm16)
        .map_err(|e| audio_err(e.to_string()))?;
    w.write_interleaved(&x)
        .map_err(|e| audio_err(e.to_string()))?;
    w.finish().map_err(|e| audio_err(e.to_string()))?;
    Ok(x.len() as f64 / 16_000.0)
}

/// espeak-ng's Korean voice `ko+{voice}` says `text` into `raw`; sox puts it through
/// the telephone channel (8 kHz, 300-3400 Hz band, G.711 mu-law) into `tel`.
fn speak_through_telephone(
    voice: &str,
    speed: usize,
    pitch: usize,
    text: &str,
    raw: &Path,
    tel: &Path,
) -> Result<(), SynthError> {
    run(
        Command::new("espeak-ng")
            .args(["-v", &format!("ko+{voice}"), "-s", &speed.to_string()])
            .args(["-p", &pitch.to_string(), "-w"])
            .arg(raw)
            .arg(text),
        "espeak-ng",
    )?;
    run(
        Command::new("sox")
            .arg(raw)
            .args(["-r", "8000", "-e", "u-law", "-b", "8"])
            .arg(tel)
            .args(["sinc", "300-3400"]),
        "sox",
    )
}

fn mkdir(p: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(p).map_err(|source| SynthError::Write {
        path: p.to_owned(),
        source,
    })
}

fn run(cmd: &mut Command, tool: &'static str) -> Result<(), SynthError> {
    let out = cmd.output().map_err(|e| SynthError::Tool {
        tool,
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(SynthError::Tool {
            tool,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_have_no_unfilled_slots_or_digits() {
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let (_, _, t) = sentence(&mut rng);
            assert!(
                !t.contains('{') && !t.chars().any(|c| c.is_ascii_digit()),
                "{t}"
            );
        }
    }
}
