//! The training side against transformers: loss and gradients of one step on the
//! fixture checkpoint, and a short training run that must bring the loss down.

mod support;

use std::io::Write;

use candle_core::{Device, Tensor};
use sangdam_host::engine::{Backend, Engine};
use sangdam_host::model::Wav2Vec2Config;
use sangdam_host::train::{self, Start, TrainSettings, Trainable};

fn rel_diff(ours: &[f32], reference: &[f64]) -> f64 {
    let max_ref = reference.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let d = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    d / max_ref
}

/// Every backend this build has: one-step loss and gradients against transformers.
#[test]
fn one_step_matches_transformers_loss_and_gradients() {
    for backend in Backend::built() {
        one_step(backend);
    }
}

fn one_step(backend: Backend) {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let config = Wav2Vec2Config::load(&dir.join("config.json")).unwrap();
    let (t, fresh) = Trainable::from_checkpoint(&dir, config, 0, &Device::Cpu).unwrap();
    assert!(
        fresh.is_empty(),
        "parameters missing from the fixture: {fresh:?}"
    );
    let vars = t.sorted_vars();

    let (shape, x) = support::npy(&dir.join("utt0.input_values.npy"));
    let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let input = Tensor::from_vec(x, (shape[0], shape[1]), &Device::Cpu).unwrap();
    let (_, labels) = support::npy(&dir.join("utt0.labels.npy"));
    let labels: Vec<u32> = labels.iter().map(|v| *v as u32).collect();
    let frames = vec![t.model.config.frames_for(shape[1])];

    let opt = train::AdamW::new(&vars, 0.0).unwrap();
    let mut engine = Engine::new(backend, &t, &opt, false, 0).unwrap();
    let batch = train::Batch {
        inputs: input,
        frames,
        labels: vec![&labels],
        masks: None,
    };
    let (loss, grads) = engine
        .loss_and_grads(&t, &vars, &batch, train::Padding::Masked, false)
        .unwrap();
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    let reference = fx["train_step_reference"]["loss"].as_f64().unwrap();
    let rel = (loss - reference).abs() / reference;
    eprintln!("{backend:?}: loss {loss} vs transformers {reference}: rel diff {rel:.2e}");
    assert!(rel <= 1e-4, "{backend:?}: loss {loss} vs {reference}");

    for (name, file) in [
        ("lm_head.weight", "utt0.grad.lm_head.weight.npy"),
        (
            "wav2vec2.feature_extractor.conv_layers.0.conv.weight",
            "utt0.grad.conv0.weight.npy",
        ),
    ] {
        let i = vars.iter().position(|(n, _)| n == name).unwrap();
        let g = grads[i]
            .as_ref()
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let (rshape, reference) = support::npy(&dir.join(file));
        assert_eq!(g.dims(), rshape.as_slice(), "{name}");
        let ours: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let rel = rel_diff(&ours, &reference);
        eprintln!("{backend:?}: grad {name}: max abs diff / max |ref| = {rel:.2e}");
        assert!(rel <= 1e-3, "{backend:?}: {name}: {rel}");
    }
}

#[test]
fn spec_augment_masks_like_transformers() {
    let mut rng = sangdam_host::rng::Rng::new(7);
    // mask_time_prob 0.05, length 10, at least 2 masks: a 400-frame input gets 2 or 3
    // spans of 10 (overlaps allowed), never more frames than that.
    for _ in 0..50 {
        let m = train::span_mask(&mut rng, 400, 0.05, 10, 2);
        let on = m.iter().filter(|&&b| b).count();
        assert!((10..=30).contains(&on), "{on} masked frames");
    }
    // Too short for a span: nothing masked.
    assert!(!train::span_mask(&mut rng, 5, 0.5, 10, 2).iter().any(|&b| b));
    // Probability 0.65 over 1000: about 65 spans of 10; with overlaps about half masked.
    let m = train::span_mask(&mut rng, 1000, 0.65, 10, 2);
    let on = m.iter().filter(|&&b| b).count();
    assert!((350..=660).contains(&on), "{on}");
}

#[test]
fn schedule_warms_up_then_decays_to_zero() {
    assert!((train::learning_rate(0, 10, 110, 1.0) - 0.1).abs() < 1e-12);
    assert!((train::learning_rate(9, 10, 110, 1.0) - 1.0).abs() < 1e-12);
    assert!((train::learning_rate(60, 10, 110, 1.0) - 0.5).abs() < 1e-12);
    assert_eq!(train::learning_rate(110, 10, 110, 1.0), 0.0);
}

#[test]
fn error_rates_count_characters_without_spaces_and_words() {
    let pairs = vec![("카드 한도".to_string(), "카드한도".to_string())];
    let (cer, wer) = sangdam_host::eval::error_rates(&pairs);
    assert_eq!(cer, 0.0);
    assert_eq!(wer, 1.0); // two reference words: one substituted, one deleted
    let (cer, _) = sangdam_host::eval::error_rates(&[("가나다라".into(), "가나마".into())]);
    assert!((cer - 0.5).abs() < 1e-12);
}

/// Writes the fixture's two utterances as a `train.jsonl` split under `root/data`;
/// returns that folder.
fn fixture_split(dir: &std::path::Path, root: &std::path::Path) -> std::path::PathBuf {
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut f = std::fs::File::create(data.join("train.jsonl")).unwrap();
    for (i, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let item = serde_json::json!({
            "key": format!("utt{i}"),
            "audio": std::fs::canonicalize(dir.join(format!("utt{i}.wav"))).unwrap(),
            "transcript": "",
            "text": case["text"],
            "seconds": 1.0,
            "speaker": "s",
        });
        writeln!(f, "{item}").unwrap();
    }
    data
}

/// The CI smoke run: a few dozen steps on the fixture's two utterances, starting from
/// the fixture checkpoint, with SpecAugment, clipping, accumulation and a checkpoint and
/// resume in the middle. The loss must fall well below where it started.
#[test]
fn smoke_training_brings_the_loss_down_and_resumes() {
    for backend in Backend::built() {
        smoke(backend);
    }
}

fn smoke(backend: Backend) {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture_split(&dir, tmp.path());
    std::fs::copy(data.join("train.jsonl"), data.join("dev.jsonl")).unwrap();
    std::fs::copy(dir.join("vocab.json"), data.join("vocab.json")).unwrap();
    let settings = TrainSettings {
        train: data.join("train.jsonl"),
        dev: Some(data.join("dev.jsonl")),
        vocab: data.join("vocab.json"),
        start: Start::Checkpoint(dir.clone()),
        out: tmp.path().join("ckpt"),
        resume: false,
        epochs: 1000,
        max_steps: 20,
        batch_size: 1,
        grad_accum: 2,
        lr: 3e-3,
        warmup_steps: 5,
        eval_every: 20,
        save_every: 10,
        log_every: 5,
        step_times: Some(tmp.path().join("steps.tsv")),
        backend,
        quiet: true,
        ..TrainSettings::default()
    };
    let first = train::train(&settings).unwrap();
    assert_eq!(first.step, 20);
    // --step-times: one line per optimiser step, step number, wall seconds, audio seconds.
    let times = std::fs::read_to_string(tmp.path().join("steps.tsv")).unwrap();
    let rows: Vec<Vec<f64>> = times
        .lines()
        .map(|l| l.split('\t').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 20);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, r)| r[0] as usize == i + 1 && r[1] > 0.0 && r[2] > 0.0));
    // Continue to 40 steps from the checkpoint left at step 20.
    let more = TrainSettings {
        max_steps: 40,
        resume: true,
        ..settings.clone()
    };
    let st = train::train(&more).unwrap();
    assert_eq!(st.step, 40);
    let start = st.losses.first().unwrap().1;
    let end = st.losses.last().unwrap().1;
    eprintln!("{backend:?}: loss by step: {:?}", st.losses);
    eprintln!("{backend:?}: dev CER by step: {:?}", st.dev_cer);
    assert!(end < start * 0.6, "{backend:?}: loss {start} -> {end}");
    assert!(tmp.path().join("ckpt/final/model.safetensors").exists());
    // The final checkpoint loads back as a Hugging Face folder.
    sangdam_host::model::Wav2Vec2ForCtc::load(&tmp.path().join("ckpt/final"), &Device::Cpu)
        .unwrap();
}

#[test]
fn exact_length_leaves_no_remainder_and_keeps_frames() {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let c = Wav2Vec2Config::load(&dir.join("config.json")).unwrap();
    for t in [400, 401, 719, 720, 721, 16_000, 54_321] {
        let e = c.exact_length(t);
        assert!(e >= t && e < t + 320 + 80, "{t} -> {e}");
        assert_eq!((e - 80) % 320, 0, "{t} -> {e}");
        assert!(c.frames_for(e) >= c.frames_for(t));
    }
}

/// Twenty optimiser steps of transformers' `Wav2Vec2ForCTC` on fixed padded batches
/// (`../shared/fixtures/train-curve`): the trainer's step (collation, attention masks,
/// CTC reduction, clipping, AdamW with decoupled decay, schedule) must reproduce every
/// step's loss and gradient norm, and the weights after the last step, within 1e-3
/// relative, once with the padding masked and once without.
fn reproduce_train_curve(padding: train::Padding) {
    for backend in Backend::built() {
        train_curve(backend, padding);
    }
}

fn train_curve(backend: Backend, padding: train::Padding) {
    let dir = support::shared("fixtures/train-curve");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("curve.json")).unwrap()).unwrap();
    let init = dir.join("init");
    let config = Wav2Vec2Config::load(&init.join("config.json")).unwrap();
    assert!(!config.apply_spec_augment);
    let (t, fresh) = Trainable::from_checkpoint(&init, config.clone(), 0, &Device::Cpu).unwrap();
    assert!(fresh.is_empty(), "not in the fixture: {fresh:?}");
    let vars = t.sorted_vars();
    let o = &fx["optimizer"];
    let mut opt = train::AdamW::new(&vars, o["weight_decay"].as_f64().unwrap()).unwrap();
    // torch.optim.AdamW over model.parameters() decays every parameter.
    opt.decay_all = true;
    assert_eq!(opt.eps, o["eps"].as_f64().unwrap());
    let mut engine = Engine::new(backend, &t, &opt, false, 0).unwrap();

    let inputs: Vec<Vec<f32>> = (0..8)
        .map(|i| {
            let (_, x) = support::npy(&dir.join(format!("utt{i}.input_values.npy")));
            x.iter().map(|v| *v as f32).collect()
        })
        .collect();
    let labels: Vec<Vec<u32>> = (0..8)
        .map(|i| {
            fx["labels"][format!("utt{i}")]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let steps = fx["steps"].as_u64().unwrap() as usize;
    let peak = o["lr"].as_f64().unwrap();
    let log = match padding {
        train::Padding::Masked => &fx["log"],
        train::Padding::Unmasked => &fx["log_without_attention_mask"],
    };
    let mut worst = (0f64, 0f64);
    for (s, entry) in log.as_array().unwrap().iter().enumerate() {
        let items: Vec<usize> = entry["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        // Zero-padded to the longest item, as the fixture's collation does.
        let width = items.iter().map(|&i| inputs[i].len()).max().unwrap();
        let mut flat = vec![0f32; items.len() * width];
        for (k, &i) in items.iter().enumerate() {
            flat[k * width..k * width + inputs[i].len()].copy_from_slice(&inputs[i]);
        }
        let batch = train::Batch {
            inputs: Tensor::from_vec(flat, (items.len(), width), &Device::Cpu).unwrap(),
            frames: items
                .iter()
                .map(|&i| config.frames_for(inputs[i].len()))
                .collect(),
            labels: items.iter().map(|&i| labels[i].as_slice()).collect(),
            masks: None,
        };
        let lr = train::learning_rate(s, 5, steps, peak);
        let ref_lr = entry["lr"].as_f64().unwrap();
        assert!(
            (lr - ref_lr).abs() <= 1e-12 * peak,
            "step {s}: lr {lr} vs {ref_lr}"
        );
        let (loss, norm) = engine
            .step(&t, &vars, &mut opt, &[batch], padding, false, 1.0, lr)
            .unwrap();
        let ref_loss = entry["loss"].as_f64().unwrap();
        let ref_norm = entry["grad_norm_before_clip"].as_f64().unwrap();
        let dl = (loss - ref_loss).abs() / ref_loss.abs();
        let dn = (norm - ref_norm).abs() / ref_norm.abs();
        eprintln!(
            "{backend:?} {padding:?} step {s}: loss {loss:.6} vs {ref_loss:.6} ({dl:.1e}), |g| {norm:.5} vs {ref_norm:.5} ({dn:.1e})"
        );
        assert!(
            dl <= 1e-3,
            "{backend:?} {padding:?} step {s}: loss {loss} vs transformers {ref_loss}"
        );
        assert!(
            dn <= 1e-3,
            "{backend:?} {padding:?} step {s}: gradient norm {norm} vs transformers {ref_norm}"
        );
        worst = (worst.0.max(dl), worst.1.max(dn));
    }
    let file = match padding {
        train::Padding::Masked => "final_subset.safetensors",
        train::Padding::Unmasked => "final_subset.no_mask.safetensors",
    };
    engine.sync(&t, &mut opt).unwrap();
    let reference = candle_core::safetensors::load(dir.join(file), &Device::Cpu).unwrap();
    assert_eq!(reference.len(), 3);
    for (name, want) in &reference {
        let (_, var) = vars.iter().find(|(n, _)| n == name).unwrap();
        let ours: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f64> = want
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let rel = rel_diff(&ours, &want);
        eprintln!("{backend:?} {padding:?} final {name}: max abs diff / max |ref| = {rel:.2e}");
        assert!(rel <= 1e-3, "{backend:?} {padding:?} final {name}: {rel}");
    }
    eprintln!(
        "{backend:?} {padding:?}: worst per-step loss {:.1e}, gradient norm {:.1e}",
        worst.0, worst.1
    );
}

#[test]
fn reproduces_transformers_train_curve_with_attention_masks() {
    reproduce_train_curve(train::Padding::Masked);
}

#[test]
fn reproduces_transformers_train_curve_without_attention_masks() {
    reproduce_train_curve(train::Padding::Unmasked);
}

/// What the fixtures leave out, candle against libtorch on the same batch: two padded
/// utterances with SpecAugment's time and feature masks, for the post-LN layout (group
/// norm, the fixture's) and the pre-LN one (layer norm after every convolution, conv
/// biases), with and without a frozen feature encoder. Loss and every gradient agree.
#[cfg(feature = "torch")]
#[test]
fn candle_and_libtorch_agree_on_masked_batches_in_both_layouts() {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    let inputs: Vec<Vec<f32>> = (0..2)
        .map(|i| {
            let (_, x) = support::npy(&dir.join(format!("utt{i}.input_values.npy")));
            x.iter().map(|v| *v as f32).collect()
        })
        .collect();
    let vocab = sangdam_host::data::read_vocab(&dir.join("vocab.json")).unwrap();
    let labels: Vec<Vec<u32>> = fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|c| sangdam_host::data::encode(c["text"].as_str().unwrap(), &vocab))
        .collect();
    for stable in [false, true] {
        let mut json = base.clone();
        json["mask_feature_prob"] = serde_json::json!(0.3);
        if stable {
            json["feat_extract_norm"] = serde_json::json!("layer");
            json["do_stable_layer_norm"] = serde_json::json!(true);
            json["conv_bias"] = serde_json::json!(true);
        }
        let config: Wav2Vec2Config = serde_json::from_value(json).unwrap();
        let t = Trainable::scratch(config.clone(), 3, &Device::Cpu).unwrap();
        let vars = t.sorted_vars();
        let width = config.exact_length(inputs.iter().map(Vec::len).max().unwrap());
        let mut flat = vec![0f32; 2 * width];
        for (k, x) in inputs.iter().enumerate() {
            flat[k * width..k * width + x.len()].copy_from_slice(x);
        }
        let frames: Vec<usize> = inputs.iter().map(|x| config.frames_for(x.len())).collect();
        let mut rng = sangdam_host::rng::Rng::new(5);
        let masks = train::spec_augment(
            &config,
            &frames,
            config.frames_for(width),
            &mut rng,
            &Device::Cpu,
        )
        .unwrap();
        assert!(masks
            .as_ref()
            .is_some_and(|m| m.time.is_some() && m.feature.is_some()));
        let batch = train::Batch {
            inputs: Tensor::from_vec(flat, (2, width), &Device::Cpu).unwrap(),
            frames,
            labels: labels.iter().map(Vec::as_slice).collect(),
            masks,
        };
        for freeze in [false, true] {
            let opt = train::AdamW::new(&vars, 0.0).unwrap();
            let mut results = Vec::new();
            for backend in [Backend::Candle, Backend::Torch] {
                let mut e = Engine::new(backend, &t, &opt, false, 0).unwrap();
                results.push(
                    e.loss_and_grads(&t, &vars, &batch, train::Padding::Masked, freeze)
                        .unwrap(),
                );
            }
            let ((lc, gc), (lt, gt)) = (&results[0], &results[1]);
            let dl = (lc - lt).abs() / lc.abs();
            eprintln!("stable {stable} freeze {freeze}: loss candle {lc} libtorch {lt} ({dl:.1e})");
            assert!(dl <= 1e-4, "stable {stable} freeze {freeze}: {lc} vs {lt}");
            let mut compared = 0;
            for (((name, _), a), b) in vars.iter().zip(gc).zip(gt) {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
                        let b: Vec<f64> = b
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap()
                            .into_iter()
                            .map(f64::from)
                            .collect();
                        // The key projection's bias has no gradient in exact arithmetic
                        // (softmax ignores a shift shared by all keys): both sides hold
                        // rounding noise there, hence the absolute floor.
                        let max_ref = b.iter().map(|v| v.abs()).fold(0.0, f64::max);
                        let diff = a
                            .iter()
                            .zip(&b)
                            .map(|(x, y)| (*x as f64 - y).abs())
                            .fold(0.0, f64::max);
                        assert!(
                            diff <= 2e-3 * max_ref + 1e-5,
                            "stable {stable} freeze {freeze} {name}: {diff:.2e} of {max_ref:.2e}"
                        );
                        compared += 1;
                    }
                    (None, None) => {}
                    // A frozen encoder: candle may hand back zeros where libtorch has none.
                    (Some(a), None) | (None, Some(a)) => {
                        let max = a
                            .abs()
                            .unwrap()
                            .max_all()
                            .unwrap()
                            .to_scalar::<f32>()
                            .unwrap();
                        assert!(max == 0.0, "{name}: a gradient on one backend only ({max})");
                    }
                }
            }
            if freeze {
                assert!(compared < vars.len());
            } else {
                assert_eq!(compared, vars.len(), "every parameter has a gradient");
            }
        }
    }
}

/// A run checkpointed by candle resumes on libtorch (and the reverse): the weights and
/// AdamW moments travel through the same safetensors files.
#[cfg(feature = "torch")]
#[test]
fn a_checkpoint_resumes_on_the_other_backend() {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture_split(&dir, tmp.path());
    std::fs::copy(dir.join("vocab.json"), data.join("vocab.json")).unwrap();
    let base = TrainSettings {
        train: data.join("train.jsonl"),
        dev: None,
        vocab: data.join("vocab.json"),
        start: Start::Checkpoint(dir.clone()),
        out: tmp.path().join("ckpt"),
        epochs: 1000,
        max_steps: 6,
        batch_size: 2,
        lr: 3e-3,
        warmup_steps: 2,
        save_every: 3,
        log_every: 1,
        quiet: true,
        ..TrainSettings::default()
    };
    // The same 12 steps three ways: all candle, candle then libtorch, libtorch then candle.
    let run = |first: Backend, second: Backend, out: &str| {
        let s = TrainSettings {
            backend: first,
            out: tmp.path().join(out),
            ..base.clone()
        };
        train::train(&s).unwrap();
        let s = TrainSettings {
            backend: second,
            resume: true,
            max_steps: 12,
            ..s
        };
        train::train(&s).unwrap()
    };
    let same = run(Backend::Candle, Backend::Candle, "cc");
    for (a, b, out) in [
        (Backend::Candle, Backend::Torch, "ct"),
        (Backend::Torch, Backend::Candle, "tc"),
    ] {
        let mixed = run(a, b, out);
        assert_eq!(mixed.step, 12);
        for ((s1, l1), (s2, l2)) in same.losses.iter().zip(&mixed.losses) {
            assert_eq!(s1, s2);
            let d = (l1 - l2).abs() / l1.abs();
            assert!(
                d <= 1e-3,
                "{a:?} then {b:?}, step {s1}: loss {l2} vs all-candle {l1}"
            );
        }
        assert_eq!(same.losses.len(), mixed.losses.len());
    }
}
