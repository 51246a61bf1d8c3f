"""Fine-tuning speed from all-MiniLM-L6-v2: tfmask (default settings) vs Hugging Face
transformers + PyTorch, fp32 and `torch.autocast("cpu", bfloat16)`, on identical batches.

    python benchmarks/finetune_speed.py --task ner            # CoNLL-2003
    python benchmarks/finetune_speed.py --task sentiment      # SST-2
    python benchmarks/finetune_speed.py --task ner --steps 40 --windows 4 --valid-examples 1000

The batches are the first `--steps` batches of what `tfmask finetune` trains on with the task's
recipe (`pipelines/ner_conll2003.py`, `pipelines/sentiment_sst2.py`) on `../shared/data`:
shuffled with its seed, padded as the recipe pads them (per batch, or to length buckets when
the recipe sets `data.length_buckets`), batch 32. They are written once to a .npz; every side
trains on exactly these tensors in this order (the same sentences, order and padding).

- tfmask: the recipe's settings as `tfmask finetune` applies them (dropout, encoder dropout,
  learning rate, `--precision` resolved for this machine, `jit_compile`), `model.fit` on the
  batches; the valid metric is `tfmask evaluate`'s (`Evaluator`).
- hf / hf_bf16: `BertFor{Token,Sequence}Classification` at its defaults (the checkpoint's
  dropout 0.1, its default attention), torch AdamW with the same schedule (10% warm-up,
  linear decay over `--steps`), fp32 / under `torch.autocast("cpu", dtype=torch.bfloat16)`,
  each in its own process (`_hf_finetune_steps.py --mode serve`, `--hf-python`, 2 threads);
  valid: first sub-word per word (NER), accuracy (SST-2).

The steps run in `--windows` windows; the sides take turns window by window (the order
rotates), so that load from other jobs falls on all of them. Window 0 holds tracing and
warm-up: `steps_per_second` is `steps per window / median time of windows 1..`, wall time the
sum of all windows. One JSON line per side on stdout, then one with the ratios (tfmask's
steps/s over each HF side's, and HF's wall time over tfmask's); logs on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import log  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from finetune_quality import DATA, RECIPES, ROOT, SHARED, minilm_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
METRIC = {"ner": "f1", "sentiment": "accuracy"}


def experiment_for(args, init: str):
    """The recipe's `FinetuneExperiment` on the shared files, from the imported checkpoint."""
    from tfmask.config import FinetuneExperiment, load_recipe

    e = load_recipe(os.path.join(ROOT, RECIPES[args.task]), FinetuneExperiment)
    train, valid = (os.path.normpath(os.path.join(SHARED, f)) for f in DATA[args.task])
    e.data.train, e.data.valid, e.data.tfds = train, valid, None
    e.train.init = init
    return e


def write_batches(path: str, experiment, train, valid, labels, tokenizer, steps: int):
    """The first `steps` training batches of `tfmask finetune`'s pipeline -> .npz; returns
    them as a list of `(x, y, sample_weight)` NumPy tuples."""
    import numpy as np

    from tfmask.train import finetuning

    ds = finetuning._train_dataset(experiment, train, tokenizer)
    batches = list(ds.take(steps).as_numpy_iterator())  # [(x dict, y, sample_weight)]
    if len(batches) < steps:
        raise SystemExit(f"the training data gives only {len(batches)} batches")
    arrays = {}
    for i, (x, y, w) in enumerate(batches):
        arrays.update({f"ids{i}": x["token_ids"], f"mask{i}": x["padding_mask"], f"y{i}": y,
                       f"w{i}": w})
    extra = {} if experiment.task == "ner" else {
        "valid_texts": np.array(valid.texts), "valid_labels": np.array(valid.label_ids)}
    np.savez(path, labels=np.array(labels), count=len(batches), **arrays, **extra)
    return batches


class TfmaskSide:
    """tfmask's classifier built and compiled as `finetuning.finetune` does for the recipe."""

    def __init__(self, experiment, labels, tokenizer, steps: int):
        import keras

        from tfmask import runs
        from tfmask.model.encoder import with_dropout
        from tfmask.train import finetuning, precision
        from tfmask.train.callbacks import quiet_unused_pooler_warning
        from tfmask.train.optimizer import build_optimizer, compile_model

        t = experiment.train
        self.policy, why = precision.resolve_for(t.precision, _default_strategy())
        log(f"tfmask precision: {self.policy} ({why}); jit_compile: {t.jit_compile}")
        self.scope = precision.policy_scope(self.policy)
        self.scope.__enter__()
        keras.utils.set_random_seed(t.seed)
        encoder = runs.load_encoder(t.init)
        rate = encoder.dropout if t.encoder_dropout is None else t.encoder_dropout
        if rate != encoder.dropout or encoder.dtype_policy.name != self.policy:
            encoder = with_dropout(encoder, rate)
        self.model = finetuning.build_classifier(experiment.task, encoder, len(labels),
                                                 t.dropout)
        quiet_unused_pooler_warning()
        optimizer = build_optimizer(t.learning_rate, steps, t.warmup_steps, t.weight_decay,
                                    t.clipnorm, t.adam_epsilon, layer_decay=t.layer_decay,
                                    num_layers=encoder.num_layers)
        compile_model(self.model, precision.with_loss_scaling(optimizer, self.policy),
                      "accuracy", t.jit_compile)
        self.settings = {"precision": self.policy, "jit_compile": t.jit_compile,
                         "dropout": t.dropout, "encoder_dropout": rate,
                         "length_buckets": experiment.data.length_buckets,
                         "steps_per_execution": 1}

    def train(self, batches) -> dict:
        import keras
        import tensorflow as tf

        stamps = []

        class Stamp(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                stamps.append(time.perf_counter())

        spec = tf.TensorSpec([None, None], tf.int32)
        y_spec = tf.TensorSpec([None] * batches[0][1].ndim, tf.int32)
        w_spec = tf.TensorSpec([None] * batches[0][2].ndim, tf.float32)
        ds = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=(
            {k: spec for k in ("token_ids", "segment_ids", "padding_mask")}, y_spec, w_spec))
        start = time.perf_counter()
        self.model.fit(ds, epochs=1, verbose=0, callbacks=[Stamp()])
        seconds = time.perf_counter() - start
        return {"seconds": seconds,
                "step_seconds": [b - a for a, b in zip([start] + stamps, stamps)]}


def _default_strategy():
    import tensorflow as tf

    return tf.distribute.get_strategy()


class HfSide:
    """A `_hf_finetune_steps.py --mode serve` process that trains window by window."""

    def __init__(self, args, path: str, autocast: str, learning_rate: float, seq_len: int):
        self.process = subprocess.Popen(
            [args.hf_python, os.path.join(HERE, "_hf_finetune_steps.py"), "--mode", "serve",
             "--task", args.task, "--autocast", autocast, "--model", minilm_folder(),
             "--batches", path, "--out", tempfile.gettempdir(), "--threads",
             str(args.threads), "--learning-rate", str(learning_rate), "--seq-len",
             str(seq_len), "--valid-examples", str(args.valid_examples),
             "--valid", os.path.normpath(os.path.join(SHARED, DATA[args.task][1]))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, OMP_WAIT_POLICY=args.omp_wait_policy))
        self.ready = self._reply()

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the Hugging Face process ended early (see its stderr above)")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._reply()


def summary(name: str, windows: list[dict], steps_per_window: int, metric: dict,
            peak_rss_mb: float, settings: dict) -> dict:
    timed = [w["seconds"] for w in windows[1:]]
    first = windows[0]["step_seconds"][0]
    return {"side": name, "steps": steps_per_window * len(windows),
            "wall_seconds": round(sum(w["seconds"] for w in windows), 2),
            "steps_per_second": round(steps_per_window / statistics.median(timed), 4),
            "median_step_seconds": round(statistics.median(
                s for w in windows[1:] for s in w["step_seconds"]), 4),
            "window_seconds": [round(w["seconds"], 2) for w in windows],
            "first_step_seconds": round(first, 2), "peak_rss_mb": round(peak_rss_mb),
            "valid": metric, "settings": settings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["ner", "sentiment"], required=True)
    parser.add_argument("--steps", type=int, default=100, help="training steps per side")
    parser.add_argument("--windows", type=int, default=5,
                        help="windows of steps/windows steps; the first is warm-up")
    parser.add_argument("--valid-examples", type=int, default=0,
                        help="score the first N validation examples (0: all)")
    parser.add_argument("--hf-python", default="/tmp/hfenv/bin/python",
                        help="a Python with torch and transformers")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--sides", default="tfmask,hf,hf_bf16")
    parser.add_argument("--omp-wait-policy", default="PASSIVE",
                        help="OMP_WAIT_POLICY of the torch processes: with other jobs on the "
                             "cores, torch's spinning OpenMP threads (ACTIVE) ran a matmul "
                             "2.2x slower than PASSIVE here")
    args = parser.parse_args()
    if args.steps % args.windows or args.windows < 4:
        parser.error("--steps must be a multiple of --windows, and --windows >= 4 (a warm-up "
                     "window and >= 3 timed ones)")
    sides = args.sides.split(",")
    load_before = os.getloadavg()

    from tfmask import runs
    from tfmask.interop import import_checkpoint
    from tfmask.text.examples import Examples, load_train_valid
    from tfmask.train.evaluation import Evaluator

    work = tempfile.mkdtemp(prefix="tfmask_ft_speed_")
    init = os.path.join(work, "minilm")
    import_checkpoint(minilm_folder(), init)
    experiment = experiment_for(args, init)
    train, valid, labels = load_train_valid(experiment)
    if args.valid_examples:
        valid = Examples(valid.source, valid.texts[:args.valid_examples],
                         valid.label_ids[:args.valid_examples])
    tokenizer = runs.load_tokenizer(init)
    path = os.path.join(work, "batches.npz")
    batches = write_batches(path, experiment, train, valid, labels, tokenizer, args.steps)
    widths = [x["token_ids"].shape[1] for x, _, _ in batches]
    log(f"{len(batches)} batches of {batches[0][0]['token_ids'].shape[0]}, padded widths "
        f"{min(widths)}-{max(widths)} (mean {statistics.mean(widths):.1f}); load "
        f"{load_before[0]:.1f}")

    d = experiment.data
    runners = {}
    if "tfmask" in sides:
        runners["tfmask"] = TfmaskSide(experiment, labels, tokenizer, args.steps)
    for name, autocast in (("hf", "none"), ("hf_bf16", "bf16")):
        if name in sides:
            runners[name] = HfSide(args, path, autocast, experiment.train.learning_rate,
                                   d.max_sequence_length)
    per = args.steps // args.windows
    windows = {name: [] for name in runners}
    for w in range(args.windows):
        order = list(runners)[w % len(runners):] + list(runners)[:w % len(runners)]
        for name in order:
            first, end = w * per, (w + 1) * per
            if name == "tfmask":
                windows[name].append(runners[name].train(batches[first:end]))
            else:
                windows[name].append(runners[name].ask(f"train {first} {end}"))
            log(f"window {w} {name}: {windows[name][-1]['seconds']:.1f} s")

    results = {}
    for name, runner in runners.items():
        if name == "tfmask":
            scores = Evaluator(experiment.task, valid, labels, tokenizer, d.max_sequence_length,
                               window_stride=d.window_stride, truncation=d.truncation)(
                                   runner.model)
            metric = {METRIC[args.task]: round(scores[METRIC[args.task]], 4),
                      "examples": len(valid)}
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            settings = runner.settings
        else:
            metric = runner.ask("eval")
            metric[METRIC[args.task]] = round(metric[METRIC[args.task]], 4)
            rss = runner.ask("quit")["peak_rss_mb"]
            settings = {"autocast": "bfloat16" if name == "hf_bf16" else None,
                        "dropout": 0.1, "threads": args.threads,
                        "omp_wait_policy": args.omp_wait_policy, **runner.ready}
        results[name] = summary(name, windows[name], per, metric, rss, settings)
        print(json.dumps({"benchmark": "finetune_speed", "task": args.task,
                          "model": "all-MiniLM-L6-v2", "batch_size": 32,
                          "mean_padded_width": round(statistics.mean(widths), 1),
                          **results[name]}), flush=True)
    ratios = {"benchmark": "finetune_speed", "task": args.task,
              "load_average_before_after": [round(load_before[0], 2),
                                            round(os.getloadavg()[0], 2)]}
    if "tfmask" in results:
        for name in ("hf", "hf_bf16"):
            if name in results:
                ratios[f"tfmask_over_{name}_steps_per_second"] = round(
                    results["tfmask"]["steps_per_second"] / results[name]["steps_per_second"], 3)
                ratios[f"{name}_over_tfmask_wall"] = round(
                    results[name]["wall_seconds"] / results["tfmask"]["wall_seconds"], 3)
    print(json.dumps(ratios), flush=True)


if __name__ == "__main__":
    main()
