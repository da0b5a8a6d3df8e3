"""The PyTorch/transformers side of scripts/bench-train: Wav2Vec2ForCTC built from a
sangdam recipe (host/recipes/*.json) trained on a `corpus index` split with the same
vocab.json as `sangdam-host train`, batches of B grouped by length, AdamW, clipping at
1.0, attention masks over the padding. Writes one TSV line per optimiser step: step,
wall seconds (collation, forward, backward, optimiser), audio seconds; then the peak RSS.

    python3 scripts/bench_train_torch.py RECIPE SPLIT.jsonl VOCAB.json STEPS THREADS OUT.tsv [no-dropout]

With `no-dropout` every dropout and LayerDrop is 0, which is the computation
`sangdam-host train` does (it has neither); without it, the recipe's transformers defaults
(dropouts 0.1, LayerDrop 0.1).
"""
import json, math, random, resource, sys, time, unicodedata

import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

recipe, split, vocab_path, steps, threads, out = sys.argv[1:7]
no_dropout = sys.argv[7:8] == ["no-dropout"]
steps, threads = int(steps), int(threads)
torch.set_num_threads(threads)
torch.manual_seed(0)
random.seed(0)
vocab = json.load(open(vocab_path, encoding="utf-8"))
items = [json.loads(l) for l in open(split, encoding="utf-8")]


def load(path):
    x, sr = sf.read(path, dtype="float32")
    assert sr == 16000, (path, sr)
    return (x - x.mean()) / math.sqrt(x.var() + 1e-7)


data = []
for it in items:
    jamo = unicodedata.normalize("NFD", it["text"].replace(" ", "|"))
    ids = [vocab.get(c, vocab.get("[UNK]")) for c in jamo]
    data.append((load(it["audio"]), ids))
cfg = json.load(open(recipe))
cfg.pop("architectures", None)
cfg.pop("model_type", None)
cfg["vocab_size"] = len(vocab)
cfg["pad_token_id"] = vocab["[PAD]"]
cfg["apply_spec_augment"] = False
if no_dropout:
    for k in ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout",
              "final_dropout", "layerdrop"):
        cfg[k] = 0.0
model = Wav2Vec2ForCTC(Wav2Vec2Config(**cfg))
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
batches = [order[i : i + 8] for i in range(0, len(order), 8)]
with open(out, "w") as f:
    step = 0
    while step < steps:
        random.shuffle(batches)
        for b in batches:
            t = time.perf_counter()
            xs = [data[i][0] for i in b]
            ys = [data[i][1] for i in b]
            T = max(len(x) for x in xs)
            X = np.zeros((len(xs), T), np.float32)
            M = np.zeros((len(xs), T), np.int64)
            for k, x in enumerate(xs):
                X[k, : len(x)] = x
                M[k, : len(x)] = 1
            L = max(len(y) for y in ys)
            Y = np.full((len(ys), L), -100, np.int64)
            for k, y in enumerate(ys):
                Y[k, : len(y)] = y
            loss = model(torch.from_numpy(X), attention_mask=torch.from_numpy(M), labels=torch.from_numpy(Y)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            step += 1
            f.write(f"{step}\t{time.perf_counter() - t:.6f}\t{M.sum() / 16000:.3f}\n")
            if step >= steps:
                break
print("peak_rss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
