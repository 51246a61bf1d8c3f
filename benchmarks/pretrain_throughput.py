"""MLM pretraining throughput: tfmask's MaskedLM vs keras-hub's BertMaskedLM, same batches.

One vocabulary and one tfmask pipeline (`tfmask.text.pretraining_data.pretraining_dataset`); N batches are
materialised in memory and the *same* tensors feed both models, so neither side pays for the
input pipeline. Both models get the same optimizer (`tfmask.train.optimizer.build_optimizer`), loss
and weighted metric (`tfmask.train.optimizer.compile_model`), dropout, `jit_compile` and
`steps_per_execution`, in fp32. Training throughput is the median over `--windows` windows of
`--steps` steps each, after `--warmup` steps; the two models alternate window by window
(A B, B A, A B, ...), so a burst of load on the shared machine hits both.

Also measured in the same process: the input pipeline alone (from text, not cached) and the
peak fp32 matmul rate, from which an MFU figure is given (the FLOPs formula is printed).

Prints logs to stderr and exactly one JSON line to stdout.

    python benchmarks/pretrain_throughput.py --preset bert_tiny --seq-len 128 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmask import presets  # noqa: E402
from tfmask.config import DataConfig, MaskingConfig  # noqa: E402
from tfmask.text import pretraining_data, tokenization
from tfmask.train.callbacks import quiet_unused_pooler_warning
from tfmask.train.optimizer import build_optimizer, compile_model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--preset", default="bert_tiny", choices=presets.PRESETS)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-predictions", type=int, default=20)
    p.add_argument("--steps", type=int, default=10, help="training steps per timed window")
    p.add_argument("--windows", type=int, default=7, help="timed windows per model (>= 3)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per model first")
    p.add_argument("--cache-batches", type=int, default=32,
                   help="batches materialised in memory (cycled)")
    p.add_argument("--corpus", default=common.DEFAULT_CORPUS,
                   help="text glob; the embedded corpus if it matches nothing")
    p.add_argument("--vocab", help="a vocab.txt instead of learning one")
    p.add_argument("--save-vocab", help="write the learned vocabulary here")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--jit-compile", action="store_true", help="XLA on both models")
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--pipeline-batches", type=int, default=200,
                   help="batches per timed window of the input-pipeline measurement")
    p.add_argument("--breakdown", action="store_true",
                   help="also time forward and forward+backward (no optimizer) per model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.windows < 3:
        p.error("--windows must be >= 3")
    spe = args.steps_per_execution
    if args.steps % spe or args.warmup % spe:
        p.error("--steps and --warmup must be multiples of --steps-per-execution")
    return args


class WindowTimer(keras.callbacks.Callback):
    """Seconds from the start of each epoch to the end of its last training step."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self._end - self._start)


def get_tokenizer(args, files):
    if args.vocab:
        vocab = tokenization.load_vocabulary(args.vocab)
    else:
        log(f"learning a {args.vocab_size}-token vocabulary from {len(files)} file(s)...")
        t0 = time.perf_counter()
        lines = tf.data.TextLineDataset(files).filter(
            lambda line: tf.strings.length(tf.strings.strip(line)) > 0)
        vocab = tokenization.learn_vocabulary(lines, args.vocab_size)
        log(f"  {len(vocab)} tokens in {time.perf_counter() - t0:.1f} s")
        if args.save_vocab:
            tokenization.save_vocabulary(vocab, args.save_vocab)
    return tokenization.WordPieceTokenizer(vocab)


def configs(args, files) -> tuple[DataConfig, MaskingConfig]:
    """The pipeline's data and masking sections: every line trains (no hold-out)."""
    return (DataConfig(corpus=list(files), eval_holdout=0.0, max_sequence_length=args.seq_len),
            MaskingConfig(max_predictions=args.max_predictions))


def pipeline_throughput(args, tokenizer, files) -> float:
    """Sequences/s of `pretraining_dataset` from text (median of 3 windows after warm-up)."""
    ds = pretraining_data.pretraining_dataset(
        tokenizer, *configs(args, files), batch_size=args.batch_size, seed=args.seed + 1,
        training=True)
    it = iter(ds)
    for _ in range(5):  # warm-up: start the interleave, fill the shuffle buffer a little
        next(it)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(args.pipeline_batches):
            next(it)
        rates.append(args.pipeline_batches * args.batch_size / (time.perf_counter() - t0))
    log(f"pipeline windows (sequences/s): {[round(r, 1) for r in rates]}")
    return statistics.median(rates)


def breakdown(models, batches, repeats: int = 20) -> dict:
    """Median ms of forward and forward+backward (gradients, no optimizer) per model."""
    x, y, w = next(iter(batches))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    fns = {}
    for name, model in models.items():
        def make(model):
            @tf.function
            def forward():
                return tf.reduce_sum(model(x, training=True))

            @tf.function
            def forward_backward():
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True), sample_weight=w)
                grads = tape.gradient(loss, model.trainable_weights)
                return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g))
                                 for g in grads if g is not None])
            return forward, forward_backward

        fns[name + "_forward"], fns[name + "_forward_backward"] = make(model)
    for f in fns.values():
        f().numpy()
        f().numpy()
    times = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved
        for k, f in fns.items():
            t0 = time.perf_counter()
            f().numpy()
            times[k].append(time.perf_counter() - t0)
    out = {k: round(1e3 * statistics.median(t), 2) for k, t in times.items()}
    log(f"breakdown (median ms, {repeats} interleaved repeats): {out}")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import tfmask

    load_start = os.getloadavg()
    log(f"tfmask imported from {os.path.dirname(tfmask.__file__)}; load average {load_start}")
    files, corpus = common.corpus_files(args.corpus)
    log(f"corpus: {corpus} ({len(files)} files)")
    log(f"TF {tf.__version__}, Keras {keras.__version__}, intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"CPUs {os.cpu_count()}")
    tokenizer = get_tokenizer(args, files)
    vocabulary_size = tokenizer.vocabulary_size

    matmul_before = common.matmul_gflops()
    log(f"peak fp32 matmul (2048^3, median of 10): {matmul_before:.1f} GFLOP/s")

    pipeline = pipeline_throughput(args, tokenizer, files)
    log(f"input pipeline alone: {pipeline:.1f} sequences/s "
        f"({pipeline * args.seq_len:.0f} tokens/s)")

    ds = pretraining_data.pretraining_dataset(
        tokenizer, *configs(args, files), batch_size=args.batch_size, seed=args.seed,
        training=True)
    batches = common.materialise(ds, args.cache_batches)

    tfmask_model, kh_model, cfg = common.build_models(args.preset, vocabulary_size, args.seed)
    models = {"tfmask": tfmask_model, "keras_hub": kh_model}
    total_steps = args.warmup + args.windows * args.steps
    timers = {}
    for name, model in models.items():
        optimizer = build_optimizer(1e-3, total_steps)
        compile_model(model, optimizer, "masked_accuracy", args.jit_compile, args.steps_per_execution)
        timers[name] = WindowTimer()
        log(f"{name}: {common.count_params(model)} trainable params, jit_compile="
            f"{model.jit_compile}, steps_per_execution={model.steps_per_execution}")
    quiet_unused_pooler_warning()

    def run(name, steps):
        models[name].fit(batches, epochs=1, steps_per_epoch=steps, verbose=0,
                         callbacks=[timers[name]])

    for name in models:
        t0 = time.perf_counter()
        run(name, args.warmup)
        log(f"{name}: warm-up ({args.warmup} steps, tracing included) "
            f"{time.perf_counter() - t0:.1f} s")
        timers[name].seconds.clear()
    order = list(models)
    for window in range(args.windows):
        for name in (order if window % 2 == 0 else order[::-1]):
            run(name, args.steps)
            log(f"window {window} {name}: {timers[name].seconds[-1]:.2f} s for "
                f"{args.steps} steps")

    extra = {}
    if args.breakdown:
        extra["breakdown_ms"] = breakdown(models, batches)
    # Measured again after training: the machine may be shared; the higher median is the peak.
    matmul_after = common.matmul_gflops()
    matmul = max(matmul_before, matmul_after)
    log(f"peak fp32 matmul after training: {matmul_after:.1f} GFLOP/s; using {matmul:.1f}")

    tokens_per_step = args.batch_size * args.seq_len
    tps = {name: args.steps * tokens_per_step / statistics.median(timer.seconds)
           for name, timer in timers.items()}
    fpt, formula = common.flops_per_token(cfg, args.seq_len, args.max_predictions)
    result = {
        "preset": args.preset, "seq_len": args.seq_len, "batch_size": args.batch_size,
        "max_predictions": args.max_predictions, "vocabulary_size": vocabulary_size,
        "jit_compile": {n: bool(m.jit_compile) for n, m in models.items()},
        "steps_per_execution": {n: int(m.steps_per_execution) for n, m in models.items()},
        "windows": args.windows, "steps_per_window": args.steps,
        "tfmask_tokens_per_second": round(tps["tfmask"], 1),
        "keras_hub_tokens_per_second": round(tps["keras_hub"], 1),
        "ratio": round(tps["tfmask"] / tps["keras_hub"], 3),
        # Window i of each model ran back to back: the median of the per-pair ratios is less
        # sensitive to load from other processes than the ratio of medians.
        "paired_ratio_median": round(statistics.median(
            k / t for t, k in zip(timers["tfmask"].seconds, timers["keras_hub"].seconds)), 3),
        # The fastest window of each model: what each reaches when nothing else runs.
        "tfmask_tokens_per_second_best_window": round(
            args.steps * tokens_per_step / min(timers["tfmask"].seconds), 1),
        "keras_hub_tokens_per_second_best_window": round(
            args.steps * tokens_per_step / min(timers["keras_hub"].seconds), 1),
        "tfmask_window_seconds": [round(s, 3) for s in timers["tfmask"].seconds],
        "keras_hub_window_seconds": [round(s, 3) for s in timers["keras_hub"].seconds],
        "pipeline_sequences_per_second": round(pipeline, 1),
        "matmul_gflops": round(matmul, 1),
        "matmul_gflops_before_after": [round(matmul_before, 1), round(matmul_after, 1)],
        "flops_per_token": round(fpt),
        "flops_per_token_formula": formula,
        "tfmask_mfu": round(tps["tfmask"] * fpt / (matmul * 1e9), 4),
        "keras_hub_mfu": round(tps["keras_hub"] * fpt / (matmul * 1e9), 4),
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        **extra,
    }
    for name in models:
        log(f"{name}: {tps[name]:.0f} tokens/s, MFU {result[name + '_mfu']:.1%}")
    if abs(result["ratio"] / result["paired_ratio_median"] - 1) > 0.05:
        log("WARNING: the ratio of medians and the median of paired ratios differ by > 5%: "
            "the load on this machine changed during the run; trust paired_ratio_median or "
            "re-run on a quiet machine")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
