"""NER fine-tuning step time: tfmask's TokenClassifier vs HF transformers + PyTorch, same batches.

    python benchmarks/finetune_step_time.py                # CoNLL-2003 train, MiniLM, 40 batches
    python benchmarks/finetune_step_time.py --gelu erfc    # Keras's own GELU, for comparison

The first `--batches` batches of tfmask's shuffled CoNLL-2003 training pipeline (per-batch
padding, batch 32, seq <= 128) are written once to a .npz; each side trains on them for one
untimed pass (tracing, warm-up) and `--windows` timed passes from the same all-MiniLM-L6-v2
weights, with the fine-tuning optimizer (AdamW, global-norm clip 1.0) and dropout 0.1, fp32,
no XLA. A step is timed from the end of the previous one (Keras callback / around the torch
step). Reported: the median over windows of each window's median step, and tfmask / HF.
HF runs in its own process (torch and TensorFlow in one process crash); 2 torch threads.
Prints logs to stderr and one JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402
from finetune_quality import SHARED, minilm_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def write_batches(path: str, init: str, train: str, count: int, batch_size: int) -> list[int]:
    import numpy as np

    from tfmask import finetune_data, finetuning, readers, runs

    tokenizer = runs.load_tokenizer(init)
    sentences = readers.read_conll(train)
    labels = readers.label_vocabulary(sentences)
    index = {t: i for i, t in enumerate(labels)}
    ds = finetune_data.ner_dataset([s.words for s in sentences],
                                   [[index[t] for t in s.tags] for s in sentences], tokenizer,
                                   128, batch_size, shuffle=True, seed=0)
    ds = ds.map(finetuning._mean_over_labelled_words)
    arrays = {}
    for i, (x, y, w) in enumerate(ds.take(count)):
        arrays.update({f"ids{i}": x["token_ids"].numpy(), f"mask{i}": x["padding_mask"].numpy(),
                       f"y{i}": y.numpy(), f"w{i}": w.numpy()})
    np.savez(path, num_labels=len(labels), **arrays)
    return [arrays[f"ids{i}"].shape[1] for i in range(count)]


def time_tfmask(path: str, init: str, windows: int) -> list[float]:
    import keras
    import numpy as np
    import tensorflow as tf

    from tfmask import finetuning, runs, training

    z = np.load(path)
    count = sum(1 for k in z.files if k.startswith("ids"))
    batches = [({"token_ids": z[f"ids{i}"], "segment_ids": np.zeros_like(z[f"ids{i}"]),
                 "padding_mask": z[f"mask{i}"]}, z[f"y{i}"], z[f"w{i}"]) for i in range(count)]
    spec = tf.TensorSpec([None, None], tf.int32)
    ds = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=(
            {k: spec for k in ("token_ids", "segment_ids", "padding_mask")}, spec,
            tf.TensorSpec([None, None], tf.float32))).cache()
    keras.utils.set_random_seed(0)
    model = finetuning.build_classifier("ner", runs.load_encoder(init), int(z["num_labels"]),
                                        0.1)
    training.quiet_unused_pooler_warning()
    finetuning._compile(model, training.build_optimizer(1e-4, 10 * count), jit_compile=False)
    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    medians = []
    for window in range(windows + 1):
        stamps.clear()
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, callbacks=[Stamp()])
        steps = [b - a for a, b in zip([start] + stamps, stamps)]
        if window:  # pass 0 traces and warms up
            medians.append(statistics.median(steps))
        log(f"tfmask pass {window}: median step {statistics.median(steps):.3f} s")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--gelu", choices=["tfmask", "erfc"], default="tfmask",
                        help="erfc: Keras's tf.nn.gelu with autodiff (before tfmask's own)")
    args = parser.parse_args()

    train = os.path.normpath(os.path.join(SHARED, "conll2003/train.txt"))
    if not os.path.exists(train):
        sys.exit(f"{train}: not found (the benchmark reads ../shared/data)")
    from tfmask import checkpoints, layers

    if args.gelu == "erfc":
        layers.FAST_GELU = False
    work = tempfile.mkdtemp(prefix="tfmask_step_bench_")
    init = os.path.join(work, "minilm")
    checkpoints.import_checkpoint(minilm_folder(), init)
    path = os.path.join(work, "batches.npz")
    widths = write_batches(path, init, train, args.batches, args.batch_size)
    log(f"{args.batches} batches of {args.batch_size}, padded widths {min(widths)}-"
        f"{max(widths)} (mean {statistics.mean(widths):.1f})")
    tfmask_medians = time_tfmask(path, init, args.windows)
    out = os.path.join(work, "hf.json")
    subprocess.run([sys.executable, os.path.join(HERE, "_hf_step_time.py"), "--model",
                    minilm_folder(), "--batches", path, "--windows", str(args.windows),
                    "--threads", str(args.threads), "--out", out], check=True)
    hf_medians = json.load(open(out))["medians"]
    tfmask_s, hf_s = statistics.median(tfmask_medians), statistics.median(hf_medians)
    tokens = args.batch_size * statistics.mean(widths)
    print(json.dumps({
        "benchmark": "finetune_step_time", "task": "ner", "model": "all-MiniLM-L6-v2",
        "batches": args.batches, "batch_size": args.batch_size,
        "mean_padded_width": round(statistics.mean(widths), 1), "gelu": args.gelu,
        "tfmask_step_s": round(tfmask_s, 4), "hf_step_s": round(hf_s, 4),
        "tfmask_over_hf": round(tfmask_s / hf_s, 3),
        "tfmask_tokens_per_s": round(tokens / tfmask_s), "hf_tokens_per_s": round(tokens / hf_s),
        "window_medians": {"tfmask": [round(m, 4) for m in tfmask_medians],
                           "hf": [round(m, 4) for m in hf_medians]},
        "settings": {"precision": "fp32", "jit_compile": False, "steps_per_execution": 1,
                     "torch_threads": args.threads, "dropout": 0.1},
        "peak_fp32_gflops": round(common.matmul_gflops(), 1)}))


if __name__ == "__main__":
    main()
