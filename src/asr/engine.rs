//! The tract engine: loads a wav2vec2 CTC ONNX graph once, optimises it with symbolic
//! batch and sample axes, and runs normalised audio through it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::tract_ndarray::{s, Array2};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::ctc::{CtcDecoder, GreedyDecoder, Transcript};
use super::features;
use super::vocab::{Vocab, VocabError};

/// The shortest input the wav2vec2 feature encoder accepts: its receptive field
/// (kernel 10 stride 5, then 3/2 x4 and 2/2 x2) spans 400 samples, 25 ms at 16 kHz.
pub const MIN_SAMPLES: usize = 400;

/// Convolution geometry of the standard wav2vec2 feature encoder, (kernel, stride) per
/// layer. Used to know how many output frames belong to each item of a padded batch.
const CONV_GEOMETRY: [(usize, usize); 7] =
    [(10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsrError {
    #[error("cannot load ASR model {path}: {source:#} (the file may be truncated or not a wav2vec2 CTC ONNX export; run `sangdam models` to check it against models/manifest.toml, or reinstall models/)")]
    Load {
        path: PathBuf,
        /// tract's own error type (`tract_onnx::prelude::TractError`).
        source: TractError,
    },
    #[error("ASR model {path} has input {found}, expected one f32 input [batch, samples] (a wav2vec2 CTC ONNX export)")]
    BadInput { path: PathBuf, found: String },
    #[error("ASR model {path} outputs {outputs} scores per frame but its vocabulary has {vocab} tokens: the model and vocab.json do not belong together; reinstall both from the same release")]
    VocabMismatch {
        path: PathBuf,
        outputs: usize,
        vocab: usize,
    },
    #[error(transparent)]
    Vocab(#[from] VocabError),
    #[error(
        "utterance of {0} samples is shorter than the model's minimum of {MIN_SAMPLES} (25 ms)"
    )]
    TooShort(usize),
    #[error("ASR model {path}: its output is not [batch, frames, vocab] with a fixed vocab size (not a wav2vec2 CTC ONNX export)")]
    BadOutput { path: PathBuf },
    #[error("ASR inference failed: {0:#}")]
    Run(TractError),
}

/// One loaded, optimised wav2vec2 CTC model with its vocabulary and decoder.
///
/// The plan is shared (`Arc`) and immutable: clone the engine to run utterances on several
/// threads; each run gets its own state.
#[derive(Clone)]
pub struct AsrEngine {
    plan: Arc<TypedRunnableModel>,
    vocab: Arc<Vocab>,
    decoder: Arc<dyn CtcDecoder>,
    path: PathBuf,
}

impl std::fmt::Debug for AsrEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrEngine")
            .field("path", &self.path)
            .field("vocab", &self.vocab.len())
            .finish()
    }
}

impl AsrEngine {
    /// Loads `model` (ONNX) and `vocab` (vocab.json), checks that they fit together and
    /// optimises the graph once. Uses the greedy decoder.
    pub fn load(model: &Path, vocab: &Path) -> Result<Self, AsrError> {
        let vocab = Vocab::load(vocab)?;
        Self::load_with(model, vocab, Arc::new(GreedyDecoder))
    }

    pub fn load_with(
        path: &Path,
        vocab: Vocab,
        decoder: Arc<dyn CtcDecoder>,
    ) -> Result<Self, AsrError> {
        let load_err = |source: TractError| AsrError::Load {
            path: path.to_owned(),
            source,
        };
        let mut model = tract_onnx::onnx().model_for_path(path).map_err(load_err)?;
        if model.inputs.len() != 1 {
            return Err(AsrError::BadInput {
                path: path.to_owned(),
                found: format!("{} inputs", model.inputs.len()),
            });
        }
        // Keep the file's own names for its symbolic axes when it has them (transformers
        // exports `batch_size`/`sequence_length` or whatever the exporter chose); create
        // them in the model's scope otherwise, so tract sees one consistent set.
        let fact = model.input_fact(0).map_err(load_err)?.clone();
        let rank = fact.shape.rank().concretize();
        if rank.is_some_and(|r| r != 2) {
            return Err(AsrError::BadInput {
                path: path.to_owned(),
                found: format!("{fact:?}"),
            });
        }
        let dims: Vec<TDim> = ["batch", "samples"]
            .iter()
            .enumerate()
            .map(|(axis, name)| {
                fact.shape
                    .dim(axis)
                    .and_then(|d| d.concretize())
                    .filter(|d| d.to_i64().is_err())
                    .unwrap_or_else(|| model.symbols.sym(name).into())
            })
            .collect();
        model
            .set_input_fact(0, f32::fact(dims).into())
            .map_err(load_err)?;
        let typed = model.into_optimized().map_err(load_err)?;
        let outputs = typed
            .output_fact(0)
            .ok()
            .and_then(|f| f.shape.last().and_then(|d| d.to_i64().ok()))
            .ok_or_else(|| AsrError::BadOutput {
                path: path.to_owned(),
            })? as usize;
        if outputs != vocab.len() {
            return Err(AsrError::VocabMismatch {
                path: path.to_owned(),
                outputs,
                vocab: vocab.len(),
            });
        }
        let plan = typed.into_runnable().map_err(load_err)?;
        Ok(AsrEngine {
            plan,
            vocab: Arc::new(vocab),
            decoder,
            path: path.to_owned(),
        })
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logits `[frames, vocab]` for one already-normalised input.
    pub fn logits(&self, input_values: &[f32]) -> Result<Array2<f32>, AsrError> {
        let mut out = self.logits_batch(&[input_values])?;
        Ok(out.remove(0))
    }

    /// Logits for several normalised inputs in one run. Shorter inputs are padded with
    /// zeros (as transformers pads for group-norm models, which take no attention mask)
    /// and their outputs are cut to the frames their own length produces.
    pub fn logits_batch(&self, inputs: &[&[f32]]) -> Result<Vec<Array2<f32>>, AsrError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let max = inputs.iter().map(|x| x.len()).max().unwrap_or(0);
        if let Some(short) = inputs.iter().find(|x| x.len() < MIN_SAMPLES) {
            return Err(AsrError::TooShort(short.len()));
        }
        let mut batch = Array2::<f32>::zeros((inputs.len(), max));
        for (i, x) in inputs.iter().enumerate() {
            batch
                .slice_mut(s![i, ..x.len()])
                .assign(&tract_ndarray::aview1(x));
        }
        let result = self
            .plan
            .run(tvec!(batch.into_tensor().into()))
            .map_err(AsrError::Run)?;
        let view = result[0]
            .to_plain_array_view::<f32>()
            .map_err(AsrError::Run)?;
        let view = view
            .into_dimensionality::<tract_ndarray::Ix3>()
            .map_err(|e| AsrError::Run(e.into()))?;
        let frames_out = view.shape()[1];
        Ok(inputs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let frames = if x.len() == max {
                    frames_out
                } else {
                    frames_for(x.len()).min(frames_out)
                };
                view.slice(s![i, ..frames, ..]).to_owned()
            })
            .collect())
    }

    /// Normalises raw 16 kHz samples, runs the model and decodes the result.
    pub fn transcribe(&self, samples: &[f32]) -> Result<Transcript, AsrError> {
        let input = features::normalize(samples);
        let logits = self.logits(&input)?;
        Ok(self.decode(&logits))
    }

    /// Transcribes several utterances in one batched run.
    pub fn transcribe_batch(&self, utterances: &[&[f32]]) -> Result<Vec<Transcript>, AsrError> {
        let inputs: Vec<Vec<f32>> = utterances.iter().map(|x| features::normalize(x)).collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        Ok(self
            .logits_batch(&refs)?
            .iter()
            .map(|l| self.decode(l))
            .collect())
    }

    pub fn decode(&self, logits: &Array2<f32>) -> Transcript {
        self.decoder.decode(logits.view(), &self.vocab)
    }
}

/// Number of output frames the standard wav2vec2 feature encoder produces for `samples`.
pub fn frames_for(samples: usize) -> usize {
    CONV_GEOMETRY.iter().fold(
        samples,
        |len, &(k, s)| {
            if len < k {
                0
            } else {
                (len - k) / s + 1
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::frames_for;

    #[test]
    fn frame_count_matches_fixture_shapes() {
        // From fixture.json: 38928 samples -> 121 frames, 61856 -> 193.
        assert_eq!(frames_for(38928), 121);
        assert_eq!(frames_for(61856), 193);
        assert_eq!(frames_for(400), 1);
        assert_eq!(frames_for(399), 0);
    }
}
