#!/usr/bin/env python3
"""onnxruntime side of `sangdam bench`: the same ONNX file and the same clips, one
thread, the same normalisation; prints one JSON line in the format the Rust side reads."""
import argparse
import json
import resource
import time
import wave

import numpy as np
import onnxruntime as ort


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getframerate() != 16000:
            raise SystemExit(f"{path}: bench_ort.py reads 16 kHz 16-bit WAV only")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        data = data.reshape(-1, w.getnchannels())[:, 0]
    return data.astype(np.float32) / 32768.0


def normalize(x):
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("audio", nargs="+")
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()
    clips = [read_wav(p) for p in a.audio]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: normalize(clips[0])[None, :]})
    load_s = time.perf_counter() - t0
    jobs, total, i = [], 0.0, 0
    while total < a.seconds:
        c = clips[i % len(clips)]
        total += len(c) / 16000.0
        jobs.append(c)
        i += 1
    t1 = time.perf_counter()
    for c in jobs:
        logits = sess.run(None, {name: normalize(c)[None, :]})[0]
        logits.argmax(-1)
    wall = time.perf_counter() - t1
    print(json.dumps({
        "runtime": "onnxruntime", "model": a.model, "workers": 1, "load_s": load_s,
        "audio_s": total, "wall_s": wall,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
