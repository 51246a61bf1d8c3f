"""Held-out masked-token accuracy: tfmask's MaskedLM vs keras-hub's BertMaskedLM, same budget.

The check of issue 2: after

    tfmask pretrain --corpus '../shared/data/corpus/*.txt' --preset bert_tiny --seq-len 128 \\
        --batch-size 32 --steps 1500 --vocab-size 8000

masked-token accuracy on held-out text must be at least what keras-hub's `BertMaskedLM`
reaches with the same shape, data and steps.

This script builds what the CLI builds, from an `Experiment` with the CLI's defaults and the
functions `tfmask pretrain` uses (`pretraining.prepare_vocabulary`, `dataset_kwargs`): the
vocabulary learned from the training lines (held-out lines excluded),
masking 15% with 80/10/10 and `max_predictions` 20, `eval_holdout` 0.01 (lines chosen by hash).
The first `--steps` training batches are materialised once and fed, in the same order, to both
models; both get `tfmask.train.optimizer.build_optimizer` with the CLI's defaults (AdamW, the preset's
default peak learning rate, 10% warm-up then linear decay, weight decay 0.01, global-norm clip
1.0), the same loss and weighted metric, dropout 0.1, fp32, the same `jit_compile` and
`steps_per_execution`, and the same initial weights (same seed, same weight creation order).
The two models train alternately in chunks of `--chunk` steps, so the wall times see the same
load.

Both are then evaluated on *all* held-out batches (deterministic masks): accuracy and mean
cross-entropy over every masked token (token-weighted), plus Keras's `evaluate` numbers (the
mean of per-batch values, what `history.json` reports as `eval_masked_accuracy`).

Prints logs to stderr and one JSON line to stdout.

    python benchmarks/pretrain_quality.py --steps 200        # quick
    python benchmarks/pretrain_quality.py                    # the check: 1500 steps
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmask import presets  # noqa: E402
from tfmask.text import pretraining_data
from tfmask.train import pretraining
from tfmask.train.callbacks import quiet_unused_pooler_warning
from tfmask.train.optimizer import build_optimizer, compile_model
from tfmask.config import Experiment  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default=common.DEFAULT_CORPUS,
                   help="text glob; the embedded corpus if it matches nothing")
    p.add_argument("--preset", default="bert_tiny", choices=presets.PRESETS)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--vocab", help="a vocab.txt instead of learning one from the corpus")
    p.add_argument("--learning-rate", type=float, default=None, help="default: tfmask's default for the preset "
                        "(tfmask.presets.default_learning_rate)")
    p.add_argument("--seed", type=int, default=None, help="default: tfmask's (0)")
    p.add_argument("--jit-compile", action="store_true")
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--chunk", type=int, default=100,
                   help="steps per alternation between the two models")
    p.add_argument("--work-dir", help="where vocab.txt is written (default: a temp dir)")
    return p.parse_args(argv)


def experiment_from_args(args) -> Experiment:
    """The `Experiment` that `tfmask pretrain` builds for the same flags."""
    e = Experiment()
    e.data.corpus = [args.corpus]  # as `--corpus GLOB`
    e.data.max_sequence_length = args.seq_len
    e.tokenizer.vocabulary_size = args.vocab_size
    e.tokenizer.vocab = args.vocab
    e.train.preset = args.preset
    e.train.batch_size = args.batch_size
    e.train.steps = args.steps
    if args.learning_rate is not None:
        e.train.learning_rate = args.learning_rate
    if e.train.learning_rate is None:  # what `pretrain()` does: the preset's default rate
        e.train.learning_rate = presets.default_learning_rate(e.train.preset)
    if args.seed is not None:
        e.train.seed = args.seed
    e.train.jit_compile = args.jit_compile
    e.train.steps_per_execution = args.steps_per_execution
    return e


def data_files(pattern: str) -> list[str]:
    return [f for f in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(f)]


def stack(batches):
    return tf.nest.map_structure(lambda *t: tf.stack(t), *batches)


def chunk_dataset(stacked, start: int, stop: int) -> tf.data.Dataset:
    part = tf.nest.map_structure(lambda t: t[start:stop], stacked)
    return tf.data.Dataset.from_tensor_slices(part).prefetch(2)


def token_weighted_eval(model, eval_batches) -> dict:
    """Accuracy and mean cross-entropy over every masked token of every held-out batch."""
    correct = total = 0.0
    loss_sum = 0.0
    for x, y, w in eval_batches:
        logits = model(x, training=False)
        used = tf.cast(w > 0, tf.float32)
        pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
        correct += float(tf.reduce_sum(tf.cast(pred == y, tf.float32) * used))
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        loss_sum += float(tf.reduce_sum(ce * used))
        total += float(tf.reduce_sum(used))
    return {"accuracy": correct / total, "loss": loss_sum / total, "masked_tokens": int(total)}


def unigram_baseline(train_stacked, eval_batches, vocabulary_size: int) -> dict:
    """A context-free reference: the masked-token distribution of the training batches.

    accuracy: always predicting the most frequent training target; loss: cross-entropy of the
    (add-one smoothed) training unigram distribution on the held-out masked tokens. A model near
    these numbers has learned token frequencies, not context.
    """
    y = train_stacked[1].numpy().ravel()
    w = train_stacked[2].numpy().ravel() > 0
    counts = np.bincount(y[w], minlength=vocabulary_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    top = int(np.argmax(counts))
    ey = np.concatenate([b[1].numpy().ravel() for b in eval_batches])
    ew = np.concatenate([b[2].numpy().ravel() for b in eval_batches]) > 0
    return {"accuracy": round(float(np.mean(ey[ew] == top)), 4),
            "loss": round(float(-np.mean(log_p[ey[ew]])), 4)}


def main(argv=None) -> int:
    args = parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tfmask_quality_")
    os.makedirs(work_dir, exist_ok=True)
    experiment = experiment_from_args(args)
    if not data_files(args.corpus):
        # What `tfmask pretrain` does without --corpus: the embedded corpus (and its holdout).
        log(f"--corpus {args.corpus!r} matches no file: using the embedded corpus")
        experiment.data.corpus = []
        pretraining.resolve_corpus(experiment, work_dir)
    t = experiment.train
    log(f"corpus: {experiment.data.corpus}, eval_holdout {experiment.data.eval_holdout}; "
        f"load average {os.getloadavg()}")

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
        tokenizer = pretraining.prepare_vocabulary(experiment, work_dir)
    log(f"vocabulary: {tokenizer.vocabulary_size} tokens ({work_dir}/vocab.txt, "
        f"{time.perf_counter() - t0:.0f} s)")

    kwargs = pretraining.dataset_kwargs(experiment, tokenizer)
    train_ds = pretraining_data.pretraining_dataset(**kwargs, training=True)
    eval_ds = pretraining_data.pretraining_dataset(**kwargs, training=False, eval_split=True)
    t0 = time.perf_counter()
    train_stacked = stack(list(train_ds.take(t.steps)))
    eval_ds = eval_ds.cache()  # all held-out batches, deterministic masks (last may be short)
    eval_batches = list(eval_ds)
    if not eval_batches:
        raise SystemExit("the held-out text is smaller than one batch")
    log(f"materialised {t.steps} training batches and {len(eval_batches)} held-out batches "
        f"in {time.perf_counter() - t0:.0f} s")

    tfmask_model, kh_model, cfg = common.build_models(
        t.preset, tokenizer.vocabulary_size, seed=t.seed, dropout=experiment.encoder.dropout)
    models = {"tfmask": tfmask_model, "keras_hub": kh_model}
    for name, model in models.items():
        optimizer = build_optimizer(t.learning_rate, t.steps, t.warmup_steps,
                                             t.weight_decay, t.clipnorm, t.adam_epsilon)
        compile_model(model, optimizer, "masked_accuracy", t.jit_compile, t.steps_per_execution)
        log(f"{name}: {common.count_params(model)} trainable params, jit_compile="
            f"{model.jit_compile}, steps_per_execution={model.steps_per_execution}")
    quiet_unused_pooler_warning()

    wall = {name: 0.0 for name in models}
    chunk_seconds = {name: [] for name in models}
    train_logs = {name: {} for name in models}
    chunk = args.chunk
    num_chunks = math.ceil(t.steps / chunk)
    for k in range(num_chunks):
        start, stop = k * chunk, min((k + 1) * chunk, t.steps)
        ds = chunk_dataset(train_stacked, start, stop)
        names = list(models) if k % 2 == 0 else list(models)[::-1]
        for name in names:
            t0 = time.perf_counter()
            history = models[name].fit(ds, epochs=k + 1, initial_epoch=k, verbose=0,
                                       shuffle=False)
            chunk_seconds[name].append(time.perf_counter() - t0)
            wall[name] += chunk_seconds[name][-1]
            train_logs[name] = {key: float(v[-1]) for key, v in history.history.items()}
        log(f"step {stop}: " + "; ".join(
            f"{n} loss {train_logs[n]['loss']:.3f} acc {train_logs[n]['masked_accuracy']:.3f} "
            f"({chunk_seconds[n][-1]:.1f} s, total {wall[n]:.0f} s)" for n in models))

    results = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        exact = token_weighted_eval(model, eval_batches)
        keras_eval = model.evaluate(eval_ds, verbose=0, return_dict=True)
        results[name] = dict(exact, keras_loss=float(keras_eval["loss"]),
                             keras_accuracy=float(keras_eval["masked_accuracy"]),
                             eval_seconds=time.perf_counter() - t0)
        log(f"{name}: held-out masked accuracy {exact['accuracy']:.4f}, loss {exact['loss']:.4f} "
            f"(Keras evaluate: {keras_eval['masked_accuracy']:.4f} / {keras_eval['loss']:.4f})")

    baseline = unigram_baseline(train_stacked, eval_batches, tokenizer.vocabulary_size)
    log(f"unigram baseline (no context): accuracy {baseline['accuracy']:.4f}, "
        f"loss {baseline['loss']:.4f}")
    n = results["tfmask"]["masked_tokens"]
    out = {
        "steps": t.steps, "preset": t.preset, "seq_len": experiment.data.max_sequence_length,
        "batch_size": t.batch_size, "vocabulary_size": tokenizer.vocabulary_size,
        "learning_rate": t.learning_rate, "seed": t.seed,
        "jit_compile": {k: bool(m.jit_compile) for k, m in models.items()},
        "steps_per_execution": {k: int(m.steps_per_execution) for k, m in models.items()},
        "eval_batches": len(eval_batches), "eval_masked_tokens": n,
        "tfmask_eval_masked_accuracy": round(results["tfmask"]["accuracy"], 4),
        "keras_hub_eval_masked_accuracy": round(results["keras_hub"]["accuracy"], 4),
        "tfmask_eval_loss": round(results["tfmask"]["loss"], 4),
        "keras_hub_eval_loss": round(results["keras_hub"]["loss"], 4),
        # Binomial standard error of one accuracy over n held-out masked tokens.
        "accuracy_standard_error": round(float(np.sqrt(
            results["keras_hub"]["accuracy"] * (1 - results["keras_hub"]["accuracy"]) / n)), 4),
        "unigram_baseline_eval": baseline,
        "tfmask_keras_evaluate": {"masked_accuracy": round(results["tfmask"]["keras_accuracy"], 4),
                                  "loss": round(results["tfmask"]["keras_loss"], 4)},
        "keras_hub_keras_evaluate": {
            "masked_accuracy": round(results["keras_hub"]["keras_accuracy"], 4),
            "loss": round(results["keras_hub"]["keras_loss"], 4)},
        "tfmask_final_train": {k: round(v, 4) for k, v in train_logs["tfmask"].items()},
        "keras_hub_final_train": {k: round(v, 4) for k, v in train_logs["keras_hub"].items()},
        "steps_run": {k: int(m.optimizer.iterations.numpy()) for k, m in models.items()},
        # First chunk includes tracing; the models alternate chunk by chunk.
        "median_chunk_seconds_after_first": {
            k: round(float(np.median(v[1:])), 2) if len(v) > 1 else None
            for k, v in chunk_seconds.items()},
        "tfmask_wall_seconds": round(wall["tfmask"], 1),
        "keras_hub_wall_seconds": round(wall["keras_hub"], 1),
        "tfmask_at_least_keras_hub": results["tfmask"]["accuracy"] >= results["keras_hub"]["accuracy"],
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
