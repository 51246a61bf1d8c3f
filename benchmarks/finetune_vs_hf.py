"""NER fine-tuning steps, tfmask vs HF transformers + PyTorch, on identical batches.

    python benchmarks/finetune_vs_hf.py --mode parity   # same function and update rule?
    python benchmarks/finetune_vs_hf.py --mode time     # step time, side by side
    python benchmarks/finetune_vs_hf.py --mode epoch [--dropout 0.1]   # a whole epoch, F1

Both modes write the first `--batches` batches of tfmask's shuffled CoNLL-2003 training
pipeline (per-batch padding, batch 32, <= 128 pieces, weights = mean over labelled words) to a
.npz and feed them to tfmask's `TokenClassifier` and to HF's `BertForTokenClassification`,
both from the all-MiniLM-L6-v2 weights (tfmask through `tfmask import`), with the fine-tuning
optimizer: AdamW (weight decay 0.01, none on LayerNorm/bias, epsilon 1e-6), global-norm clip
1.0, fp32, no XLA. HF runs in its own process (torch and TensorFlow in one process crash).

- parity: dropout off on both sides, HF's randomly initialised classifier copied into
  tfmask's, a 2-step warm-up then linear decay over 10 steps, `--batches` (5) steps through
  `model.fit`. Reports each step's loss on both sides and, after the steps, the largest
  difference of every encoder weight (HF's trained encoder read back by `tfmask import`'s
  reader) and of the classifier.
- epoch: every training batch of the epoch (439), identical on both sides, HF's classifier
  start copied, `--dropout` (0) everywhere on both sides, the fine-tuning schedule (10%
  warm-up, linear decay); then valid F1 (tfmask: `tfmask evaluate`'s scorer; HF: first
  sub-word per word, 128 pieces) and training time. Only the dropout masks differ.
- time: dropout 0.1, one untimed pass over `--batches` (40) batches (tracing, warm-up), then
  `--windows` timed passes; a step is timed from the end of the previous one (Keras callback)
  or around the torch step. Reports the median over passes of each pass's median step.

Logs go to stderr, one JSON line to stdout.
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
    """The first `count` training batches of tfmask's NER pipeline -> .npz; their widths."""
    import numpy as np

    from tfmask import runs
    from tfmask.text import finetuning_data, readers
    from tfmask.text.labels import label_vocabulary

    sentences = readers.read_conll(train)
    labels = label_vocabulary(sentences)
    index = {t: i for i, t in enumerate(labels)}
    ds = finetuning_data.ner_dataset([s.words for s in sentences],
                                   [[index[t] for t in s.tags] for s in sentences],
                                   runs.load_tokenizer(init), 128, batch_size, shuffle=True,
                                   seed=0)
    arrays = {}
    for i, (x, y, w) in enumerate(ds.take(count or -1)):
        arrays.update({f"ids{i}": x["token_ids"].numpy(), f"mask{i}": x["padding_mask"].numpy(),
                       f"y{i}": y.numpy(), f"w{i}": w.numpy()})
    np.savez(path, num_labels=len(labels), labels=np.array(labels), count=len(arrays) // 4,
             **arrays)
    return [arrays[f"ids{i}"].shape[1] for i in range(len(arrays) // 4)]


def tfmask_model(path: str, init: str, total_steps: int, warmup_steps: int, dropout: float):
    """(TokenClassifier compiled as `tfmask finetune` compiles it, the batches' dataset);
    `dropout` everywhere (encoder and head), as `--dropout R --encoder-dropout R` would."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfmask import runs
    from tfmask.model.encoder import with_dropout
    from tfmask.train import finetuning
    from tfmask.train.callbacks import quiet_unused_pooler_warning
    from tfmask.train.optimizer import build_optimizer, compile_model

    z = np.load(path)
    batches = [({"token_ids": z[f"ids{i}"], "segment_ids": np.zeros_like(z[f"ids{i}"]),
                 "padding_mask": z[f"mask{i}"]}, z[f"y{i}"], z[f"w{i}"])
               for i in range(int(z["count"]))]
    spec = tf.TensorSpec([None, None], tf.int32)
    ds = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=(
            {k: spec for k in ("token_ids", "segment_ids", "padding_mask")}, spec,
            tf.TensorSpec([None, None], tf.float32))).cache()
    keras.utils.set_random_seed(0)
    encoder = with_dropout(runs.load_encoder(init), dropout)
    model = finetuning.build_classifier("ner", encoder, int(z["num_labels"]), dropout)
    quiet_unused_pooler_warning()
    compile_model(model, build_optimizer(1e-4, total_steps, warmup_steps), "accuracy",
                  jit_compile=False)
    return model, ds


class _Stamps:
    def __init__(self):
        import keras

        self.times, self.losses = [], []
        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.times.append(time.perf_counter())
                outer.losses.append(float(logs["loss"]))  # running mean over the pass

        self.callback = Callback()


def run_hf(mode: str, path: str, work: str, args) -> dict:
    subprocess.run([sys.executable, os.path.join(HERE, "_hf_finetune_steps.py"), "--mode", mode,
                    "--model", minilm_folder(), "--batches", path, "--out", work,
                    "--windows", str(args.windows), "--threads", str(args.threads),
                    "--dropout", str(args.dropout), "--valid", args.valid], check=True)
    return json.load(open(os.path.join(work, f"hf_{mode}.json")))


def _start_from_hf_classifier(model, work: str) -> None:
    import numpy as np

    start = np.load(os.path.join(work, "classifier_init.npz"))
    model.get_layer("logits").set_weights([start["weight"].T, start["bias"]])


def epoch(path: str, init: str, work: str, args) -> dict:
    """One epoch on identical batches from the same classifier start; valid F1 each side."""
    import numpy as np

    from tfmask import runs
    from tfmask.text import readers
    from tfmask.text.examples import Examples
    from tfmask.train.evaluation import Evaluator

    hf = run_hf("epoch", path, work, args)
    count = int(np.load(path)["count"])
    model, ds = tfmask_model(path, init, total_steps=count, warmup_steps=-1,
                             dropout=args.dropout)
    _start_from_hf_classifier(model, work)
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    labels = [str(t) for t in np.load(path)["labels"]]
    valid = readers.read_conll(args.valid)
    examples = Examples(args.valid, [s.words for s in valid],
                                   [[labels.index(t) for t in s.tags] for s in valid])
    scores = Evaluator("ner", examples, labels, runs.load_tokenizer(init), 128)(model)
    return {"steps": count, "dropout": args.dropout,
            "tfmask": {k: scores[k] for k in ("f1", "precision", "recall")} | {
                "train_seconds": round(seconds, 1)},
            "hf": {k: hf[k] for k in ("f1", "precision", "recall")} | {
                "train_seconds": round(hf["train_seconds"], 1)},
            "settings": {"torch": hf["torch"], "transformers": hf["transformers"],
                         "classifier_start": "HF's, copied", "batch_order": "tfmask seed 0"}}


def parity(path: str, init: str, work: str, args) -> dict:
    import numpy as np

    from tfmask.interop import build_models, read_checkpoint

    hf = run_hf("parity", path, work, args)
    model, ds = tfmask_model(path, init, total_steps=10, warmup_steps=2, dropout=0.0)
    _start_from_hf_classifier(model, work)
    stamps = _Stamps()
    model.fit(ds, epochs=1, verbose=0, callbacks=[stamps.callback])
    means = stamps.losses  # running means -> each step's loss
    losses = [means[0]] + [(k + 1) * means[k] - k * means[k - 1] for k in range(1, len(means))]
    reference, _, _ = build_models(
        read_checkpoint(os.path.join(work, "hf_trained")), strict=False)
    ours = {w.path: w.numpy() for w in model.encoder.weights}
    weight_diff = {w.path: float(np.abs(w.numpy() - ours[w.path]).max())
                   for w in reference.weights if not w.path.startswith("pooler")}
    trained = np.load(os.path.join(work, "classifier_trained.npz"))
    kernel, bias = model.get_layer("logits").get_weights()
    weight_diff["logits/kernel"] = float(np.abs(kernel - trained["weight"].T).max())
    weight_diff["logits/bias"] = float(np.abs(bias - trained["bias"]).max())
    init_encoder = {w.path: w.numpy() for w in build_models(
        read_checkpoint(minilm_folder()))[0].weights}
    moved = max(float(np.abs(ours[p] - init_encoder[p]).max()) for p in ours
                if not p.startswith("pooler"))
    worst = max(weight_diff, key=weight_diff.get)
    return {"steps": len(losses), "tfmask_losses": [round(x, 6) for x in losses],
            "hf_losses": [round(x, 6) for x in hf["losses"]],
            "max_loss_diff": max(abs(a - b) for a, b in zip(losses, hf["losses"])),
            "max_weight_diff": weight_diff[worst], "worst_weight": worst,
            "largest_weight_change": moved, "weights_compared": len(weight_diff),
            "settings": {"dropout": 0.0, "schedule": "2 warm-up steps, linear decay over 10",
                         "torch": hf["torch"], "transformers": hf["transformers"]}}


def step_time(path: str, init: str, work: str, widths: list[int], args) -> dict:
    model, ds = tfmask_model(path, init, total_steps=10 * args.batches, warmup_steps=0,
                             dropout=0.1)
    medians = []
    for window in range(args.windows + 1):
        stamps = _Stamps()
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, callbacks=[stamps.callback])
        steps = [b - a for a, b in zip([start] + stamps.times, stamps.times)]
        if window:  # pass 0 traces and warms up
            medians.append(statistics.median(steps))
        log(f"tfmask pass {window}: median step {statistics.median(steps):.3f} s")
    hf = run_hf("time", path, work, args)["medians"]
    ours, theirs = statistics.median(medians), statistics.median(hf)
    tokens = args.batch_size * statistics.mean(widths)
    return {"tfmask_step_s": round(ours, 4), "hf_step_s": round(theirs, 4),
            "tfmask_over_hf": round(ours / theirs, 3),
            "tfmask_tokens_per_s": round(tokens / ours), "hf_tokens_per_s": round(tokens / theirs),
            "pass_medians": {"tfmask": [round(m, 4) for m in medians],
                             "hf": [round(m, 4) for m in hf]},
            "settings": {"precision": "fp32", "jit_compile": False, "steps_per_execution": 1,
                         "dropout": 0.1, "torch_threads": args.threads},
            "peak_fp32_gflops": round(common.matmul_gflops(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["parity", "time", "epoch"], required=True)
    parser.add_argument("--batches", type=int,
                        help="default: 5 (parity), 40 (time), 0 = all (epoch)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="epoch: every dropout of the model, both sides (default 0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--windows", type=int, default=3, help="timed passes (time)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    if args.batches is None:
        args.batches = {"parity": 5, "time": 40, "epoch": 0}[args.mode]

    train = os.path.normpath(os.path.join(SHARED, "conll2003/train.txt"))
    args.valid = os.path.normpath(os.path.join(SHARED, "conll2003/valid.txt"))
    if not os.path.exists(train):
        sys.exit(f"{train}: not found (the benchmark reads ../shared/data)")
    from tfmask.interop import import_checkpoint

    work = tempfile.mkdtemp(prefix="tfmask_vs_hf_")
    init = os.path.join(work, "minilm")
    import_checkpoint(minilm_folder(), init)
    path = os.path.join(work, "batches.npz")
    widths = write_batches(path, init, train, args.batches, args.batch_size)
    log(f"{len(widths)} batches of {args.batch_size}, padded widths {min(widths)}-"
        f"{max(widths)} (mean {statistics.mean(widths):.1f})")
    if args.mode == "parity":
        result = parity(path, init, work, args)
    elif args.mode == "epoch":
        result = epoch(path, init, work, args)
    else:
        result = step_time(path, init, work, widths, args)
    print(json.dumps({"benchmark": "finetune_vs_hf", "mode": args.mode, "task": "ner",
                      "model": "all-MiniLM-L6-v2", "batches": len(widths),
                      "batch_size": args.batch_size,
                      "mean_padded_width": round(statistics.mean(widths), 1), **result}))


if __name__ == "__main__":
    main()
