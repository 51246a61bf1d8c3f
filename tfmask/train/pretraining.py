"""`pretrain()`: raw text to a pretrained encoder in a run directory.

A run directory holds

    config.json        the full resolved `Experiment`
    vocab.txt          the WordPiece vocabulary
    checkpoints/       `BackupAndRestore` state (weights + optimizer) while the run is
                       unfinished: re-running the same command resumes here
    encoder.keras      the trained `BertEncoder` (what fine-tuning and export load)
    masked_lm.keras    encoder + MLM head (fill-mask)
    history.json       one record per checkpoint interval (see `HistoryRecorder`)
    history.png        loss, masked-accuracy and learning-rate curves
    tensorboard/       TensorBoard logs

The `.keras` files hold weights only, no optimizer. They are written after the last step:
with both present the run is finished, `checkpoints/` is removed (the optimizer state is of no
further use: `--init` reads `encoder.keras`, `vocab.txt` and `config.json`), and re-running
the command trains nothing and returns the last record.

Across workers (`--strategy multi_worker`, `tfmask.train.distribute`) every worker runs
`pretrain` with the same arguments: the chief learns the vocabulary, claims the run directory
and writes it; the others receive what they need from it and write into temporary folders.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from tfmask import presets, runs
from tfmask.text import pretraining_data, text_files, tokenization
from tfmask.train import checkpoints, distribute
from tfmask.train.callbacks import (HistoryRecorder, ReseedDropout, progress_callbacks,
                                    quiet_unused_pooler_warning, resumed_epoch)
from tfmask.train.optimizer import build_optimizer, compile_model
from tfmask.config import DataConfig, Experiment
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import MaskedLM


EMBEDDED_EVAL_HOLDOUT = 0.05


def resolve_corpus(experiment: Experiment, run_dir: str) -> None:
    """Fills `data.corpus` with the embedded corpus when no text source is given."""
    if experiment.data.corpus or experiment.data.tfds:
        return
    from tfmask import demo

    directory = os.path.join(run_dir, "embedded_corpus")
    demo.write_corpus(directory, seed=0)
    experiment.data.corpus = [os.path.join(directory, "*.txt")]
    if experiment.data.eval_holdout == DataConfig.eval_holdout:
        # 1% of a 300 KB corpus is a handful of sequences: hold out 5% for a stable curve.
        experiment.data.eval_holdout = EMBEDDED_EVAL_HOLDOUT


def training_lines(experiment: Experiment) -> tf.data.Dataset:
    """The lines a vocabulary may be learned from: training text only, held-out lines excluded."""
    d = experiment.data
    if d.tfds:
        lines = pretraining_data.tfds_lines(d.tfds, d.tfds_text_key, d.tfds_data_dir)
    else:
        lines = tf.data.TextLineDataset(pretraining_data.expand_globs(d.corpus))
    if d.skip_bad_lines:
        lines = pretraining_data.good_lines(lines)
    if d.holdout_active:
        lines = lines.filter(pretraining_data.holdout_filter(d.eval_holdout, keep_heldout=False))
    return lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)


#: What `checkpoints.StopOnNonFiniteLoss` suggests when the loss is NaN or infinite.
_NON_FINITE_ADVICE = ("Try a lower --learning-rate, a longer --warmup-steps, a smaller "
                      "--set train.clipnorm=..., or no --mixed-precision, in a new --out (a "
                      "run directory keeps its configuration).")


def _require_text(experiment: Experiment) -> None:
    """A training split with at least one line (the hold-out can take a tiny corpus's all)."""
    for _ in training_lines(experiment).take(1):
        return
    d = experiment.data
    source = f"--tfds {d.tfds} (feature {d.tfds_text_key!r})" if d.tfds else \
        "--corpus " + " ".join(repr(p) for p in d.corpus)
    held = (f"; --eval-holdout {d.eval_holdout} holds lines out for evaluation, "
            "--eval-holdout 0 or an --eval-corpus keeps them all") if d.holdout_active else ""
    raise ValueError(f"{source}: no line of text left to train on{held}")


def prepare_vocabulary(experiment: Experiment, run_dir: str) -> tokenization.WordPieceTokenizer:
    """Loads `RUN/vocab.txt` (resume), the given `--vocab`, or learns one from the corpus."""
    path = os.path.join(run_dir, "vocab.txt")
    lower = experiment.tokenizer.lower_case
    if os.path.exists(path):
        vocab = tokenization.load_vocabulary(path)
    elif experiment.tokenizer.vocab:
        vocab = tokenization.load_vocabulary(experiment.tokenizer.vocab)
    else:
        _require_text(experiment)
        print(f"Learning a {experiment.tokenizer.vocabulary_size}-token WordPiece vocabulary "
              "from the corpus...", flush=True)
        vocab = tokenization.learn_vocabulary(
            training_lines(experiment), experiment.tokenizer.vocabulary_size, lower)
    if not os.path.exists(path):
        if experiment.tokenizer.vocab:
            _require_text(experiment)
        runs.write_vocabulary(run_dir, vocab)
    return tokenization.WordPieceTokenizer(vocab, lower_case=lower)


def dataset_kwargs(experiment: Experiment, tokenizer) -> dict:
    """Arguments of `pretraining_data.pretraining_dataset` shared by the training and eval
    pipelines (which add `training`, `start_step` or `eval_split`)."""
    return dict(tokenizer=tokenizer, data=experiment.data, masking=experiment.masking,
                batch_size=experiment.train.batch_size, seed=experiment.train.seed)


def eval_dataset(experiment: Experiment, tokenizer) -> tuple[tf.data.Dataset | None, int]:
    """The same eval batches at every checkpoint: (dataset, number of batches)."""
    if not experiment.data.eval_corpus and not experiment.data.holdout_active:
        return None, 0
    ds = pretraining_data.pretraining_dataset(**dataset_kwargs(experiment, tokenizer),
                                              training=False, eval_split=True)
    ds = ds.take(experiment.train.eval_steps).cache()
    count = sum(1 for _ in ds)
    if count == 0:
        d = experiment.data
        corpus = f"--tfds {d.tfds}" if d.tfds else "--corpus " + " ".join(map(repr, d.corpus))
        source = ("--eval-corpus " + " ".join(map(repr, d.eval_corpus)) if d.eval_corpus
                  else f"--eval-holdout {d.eval_holdout} of {corpus}")
        raise ValueError(
            f"{source}: the evaluation text yields no sequence (no line of text, or no line "
            "held out); give a larger --eval-corpus or --eval-holdout, or --eval-holdout 0 "
            "to train without evaluation")
    return ds.repeat(), count


def pretrain(experiment: Experiment, run_dir: str, strategy=None, verbose=None) -> dict:
    """Pretrains (or resumes pretraining) a BERT encoder with MLM and writes `run_dir`.

    Args:
      experiment: the configuration. `encoder` is derived from `train.preset`, the vocabulary
        and `data.max_sequence_length`.
      run_dir: output directory. If it holds a run with the same configuration, training
        resumes from its last checkpoint (a finished run: nothing is trained, its last
        record is returned); a different configuration is an error.
      strategy: a `tf.distribute.Strategy`; default chosen by `train.strategy` (before
        anything else: a multi-worker strategy must precede every other TensorFlow op).
      verbose: progress (`callbacks.progress_callbacks`): None (default), a live progress bar
        on a terminal and otherwise (log file, CI, notebook) a line every 30 s or 10% of the
        run, with one at every checkpoint; 0 silent; 1 the bar; 2 the lines; or a
        `callbacks.ProgressLogger` for lines at its own interval.

    Returns:
      The last `history.json` record plus `run_dir`.
    """
    experiment.validate()  # before anything is written: a mistake leaves no trace
    # So is a bad line of the corpus: read once in plain Python, not deep in tf.data (with
    # --skip-bad-lines such lines are counted, and the pipelines leave them out).
    text_files.check_corpus(experiment.data)
    strategy = strategy or distribute.choose_strategy(experiment.train.strategy)
    with distribute.worker_directory(strategy, run_dir) as out:
        summary = _pretrain(experiment, run_dir, out, strategy, verbose)
    summary["run_dir"] = run_dir
    return summary


def _complete(experiment: Experiment, vocabulary_size: int) -> None:
    """Fills in what follows from the vocabulary: its size, the encoder, the learning rate."""
    t = experiment.train
    experiment.tokenizer.vocabulary_size = vocabulary_size
    if t.learning_rate is None:
        t.learning_rate = presets.default_learning_rate(t.preset)
    experiment.encoder = presets.encoder_config(
        t.preset, vocabulary_size,
        max_sequence_length=max(512, experiment.data.max_sequence_length),
        dropout=experiment.encoder.dropout)


def _pretrain(experiment: Experiment, run_dir: str, out: str, strategy, verbose) -> dict:
    """`pretrain` on one worker, which writes into `out` (`run_dir` on the chief)."""
    t = experiment.train
    os.makedirs(out, exist_ok=True)
    resolve_corpus(experiment, out)  # each worker writes the same embedded corpus for itself
    backup_dir = os.path.join(out, "checkpoints")

    def prepare() -> dict:  # on the chief
        tokenizer = prepare_vocabulary(experiment, out)
        _complete(experiment, tokenizer.vocabulary_size)
        runs.claim_run_dir(experiment, out)
        last = None
        if runs.is_finished(out, "pretrain"):
            print(f"{run_dir} is a finished run (encoder.keras and masked_lm.keras are there): "
                  "nothing left to train. Choose a new --out to train again.", flush=True)
            last = _finish(out, runs.read_json(os.path.join(out, "history.json")))
        return {"vocab": tokenizer.vocab, "start_epoch": resumed_epoch(backup_dir),
                "finished": last}

    prepared = distribute.chief_first(strategy, prepare)
    if prepared["finished"] is not None:
        return prepared["finished"]
    tokenizer = tokenization.WordPieceTokenizer(prepared["vocab"],
                                                lower_case=experiment.tokenizer.lower_case)
    _complete(experiment, tokenizer.vocabulary_size)

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy(t.mixed_precision)
    quiet_unused_pooler_warning()

    start_step = prepared["start_epoch"] * t.save_every
    if start_step:
        print(f"Resuming {run_dir} from step {start_step} of {t.steps}.", flush=True)
    runs.record_environment(out, start_step=start_step)
    train_ds = distribute.distribute_training_data(
        strategy, lambda input_context: pretraining_data.pretraining_dataset(
            **dataset_kwargs(experiment, tokenizer), training=True, start_step=start_step,
            input_context=input_context))
    eval_ds, eval_batches = eval_dataset(experiment, tokenizer)

    with strategy.scope():
        encoder = BertEncoder.from_encoder_config(experiment.encoder)
        model = MaskedLM(encoder)
        optimizer = build_optimizer(
            t.learning_rate, t.steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon)
        compile_model(model, optimizer, "masked_accuracy",
                      t.jit_compile or distribute.needs_static_shapes(strategy),
                      t.steps_per_execution)
    distribute.enable_multi_worker_fit(model, strategy)

    # The history row of an interval is written before the checkpoint that marks the
    # interval done: a kill between the two then only repeats the interval, never loses a row.
    callbacks = [
        HistoryRecorder(out, t.save_every,
                                 t.batch_size * experiment.data.max_sequence_length,
                                 start_step=start_step),
        checkpoints.Checkpoints(backup_dir, save_freq="epoch", delete_checkpoint=False),
        distribute.SyncFromChief(strategy),  # right after the restore
        keras.callbacks.TensorBoard(os.path.join(out, "tensorboard")),
        ReseedDropout(),
        checkpoints.StopOnNonFiniteLoss(t.save_every, _NON_FINITE_ADVICE),
    ]
    tokens_per_step = t.batch_size * experiment.data.max_sequence_length
    verbose, progress = progress_callbacks(verbose, steps_per_epoch=t.save_every,
                                           tokens_per_step=tokens_per_step,
                                           epochs_are_intervals=True)
    callbacks += progress
    model.fit(train_ds, epochs=t.steps // t.save_every, steps_per_epoch=t.save_every,
              validation_data=eval_ds, validation_steps=eval_batches or None,
              callbacks=callbacks, verbose=verbose, shuffle=False)

    def save() -> dict:  # the chief's models (the other workers' folders are thrown away)
        # Both files present mark the run finished (`runs.FINAL_FILES`); a kill before then
        # resumes at the last checkpoint, which trains nothing and writes them again.
        runs.save_model(encoder, os.path.join(out, "encoder.keras"))
        runs.save_model(model, os.path.join(out, "masked_lm.keras"))
        return _finish(out, callbacks[0].records)

    # Every worker returns once the chief has written them (a next command may read them).
    return distribute.chief_first(strategy, save)


def _finish(run_dir: str, records: list[dict]) -> dict:
    """Removes the finished run's checkpoints; returns its last history record + `run_dir`."""
    runs.prune_checkpoints(run_dir)
    summary = dict(records[-1]) if records else {}
    summary["run_dir"] = run_dir
    return summary

