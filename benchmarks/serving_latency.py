"""Serving latency and throughput: the exported `serve_text` vs Keras + Python tokenization.

    python benchmarks/serving_latency.py --run runs/quickstart-sentiment
    python benchmarks/serving_latency.py --run RUN --texts ../shared/data/sst2/dev.tsv

Exports RUN (a fine-tuned sentiment or NER run, or a pretraining run) to a temporary
`saved_models/`, reloads it with `tf.saved_model.load` and measures, on CPU:

- serve_text: strings in, tokenization + packing + model in one graph call;
- keras: the run's Keras model (`predict_on_batch`) fed ids that Python made with Hugging
  Face `tokenizers` (BertWordPieceTokenizer on the same vocab.txt, the usual Python-side
  route; the tfmask tokenizer in eager mode when `tokenizers` is absent).

Latency: batch 1, `--requests` single-text calls after `--warmup` calls: p50 and p99 in ms.
Throughput: batch 64, texts per second over `--batches` batches (median of 3 windows).
Texts: the first column of `--texts` (TSV/CSV via tfmask.readers, or a text file), default
the embedded sentiment dev set. Logs on stderr, one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def load_texts(path: str | None) -> list[str]:
    from tfmask import demo
    from tfmask.text import readers

    if path is None:
        directory = tempfile.mkdtemp(prefix="tfmask_latency_")
        path = demo.write_all(directory, seed=0)["sentiment_dev"]
    if path.endswith((".tsv", ".csv")):
        return readers.read_classification(path)[0]
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def python_tokenizer(run_dir: str, max_len: int):
    """texts -> padded id arrays, tokenized in Python."""
    from tfmask import runs

    lower = runs.tokenizer_config(run_dir).lower_case
    try:
        from tokenizers import BertWordPieceTokenizer

        tok = BertWordPieceTokenizer(os.path.join(run_dir, "vocab.txt"), lowercase=lower)
        tok.enable_truncation(max_len)
        tok.enable_padding()

        def encode(texts):
            enc = tok.encode_batch(texts)
            ids = np.array([e.ids for e in enc], np.int32)
            return {"token_ids": ids, "segment_ids": np.zeros_like(ids),
                    "padding_mask": np.array([e.attention_mask for e in enc], np.int32)}

        return encode, "huggingface tokenizers (Rust)"
    except ImportError:
        from tfmask.text.packing import build_sequences

        tokenizer = runs.load_tokenizer(run_dir)

        def encode(texts):
            pieces = tokenizer.tokenize_words(texts).merge_dims(1, 2)
            inputs = build_sequences(pieces, cls_token_id=tokenizer.cls_token_id,
                                     sep_token_id=tokenizer.sep_token_id,
                                     pad_token_id=tokenizer.pad_token_id,
                                     max_sequence_length=max_len)
            return {k: v.numpy() for k, v in inputs.items()}

        return encode, "tfmask WordPieceTokenizer (eager)"


def latencies(call, texts, requests: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call([texts[i % len(texts)]])
    out = []
    for i in range(requests):
        t0 = time.perf_counter()
        call([texts[i % len(texts)]])
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def throughput(call, texts, batch: int, batches: int) -> float:
    chunks = [texts[(i * batch) % len(texts):][:batch] for i in range(batches)]
    chunks = [c if len(c) == batch else (c + texts)[:batch] for c in chunks]
    call(chunks[0])
    windows = []
    for _ in range(3):
        t0 = time.perf_counter()
        for chunk in chunks:
            call(chunk)
        windows.append(batch * batches / (time.perf_counter() - t0))
    return statistics.median(windows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a fine-tuned (sentiment/NER) or pretraining run")
    p.add_argument("--texts", help="TSV/CSV (text column) or a text file; default: embedded")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=10)
    args = p.parse_args()

    from tfmask.serve import export

    base = tempfile.mkdtemp(prefix="tfmask_latency_models_")
    result = export.export(args.run, "bench", base)
    kind = result["kind"]
    if kind == "fill_mask":
        sys.exit("serving_latency compares classifiers: give a fine-tuned sentiment/NER run")
    serve_text = tf.saved_model.load(result["text"]["path"]).signatures["serve_text"]
    texts = load_texts(args.texts)
    from tfmask.train.finetuning import load_finetuned

    experiment, model, _ = load_finetuned(args.run)
    encode, tokenizer_name = python_tokenizer(args.run, experiment.data.max_sequence_length)

    def call_serving(batch):
        return serve_text(text=tf.constant(batch))

    def call_keras(batch):
        return model.predict_on_batch(encode(batch))

    sides = {"serve_text": call_serving, "keras_python_tokenization": call_keras}
    report = {}
    for name, call in sides.items():
        lat = latencies(call, texts, args.requests, args.warmup)
        tput = throughput(call, texts, args.batch_size, args.batches)
        report[name] = {"p50_ms": float(np.percentile(lat, 50)),
                        "p99_ms": float(np.percentile(lat, 99)),
                        f"texts_per_second_batch{args.batch_size}": tput}
        log(name, json.dumps(report[name]))
    a, b = report["serve_text"], report["keras_python_tokenization"]
    key = f"texts_per_second_batch{args.batch_size}"
    print(json.dumps({
        "kind": kind, "run": args.run, "texts": len(texts), **report,
        "ratios_serve_text_over_keras": {
            "p50_latency": a["p50_ms"] / b["p50_ms"], "p99_latency": a["p99_ms"] / b["p99_ms"],
            "throughput": a[key] / b[key]},
        "python_tokenizer": tokenizer_name, "device": "CPU", "threads": os.cpu_count(),
        "tensorflow": tf.__version__, "peak_fp32_gflops": round(common.matmul_gflops(), 1)}))


if __name__ == "__main__":
    main()
