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
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from tfmask import presets, runs
from tfmask.text import pretraining_data, tokenization
from tfmask.train.callbacks import (HistoryRecorder, ReseedDropout, progress_callbacks,
                                    quiet_unused_pooler_warning, resumed_epoch)
from tfmask.train.distribute import choose_strategy
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
    if d.holdout_active:
        lines = lines.filter(pretraining_data.holdout_filter(d.eval_holdout, keep_heldout=False))
    return lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)


def prepare_vocabulary(experiment: Experiment, run_dir: str) -> tokenization.WordPieceTokenizer:
    """Loads `RUN/vocab.txt` (resume), the given `--vocab`, or learns one from the corpus."""
    path = os.path.join(run_dir, "vocab.txt")
    lower = experiment.tokenizer.lower_case
    if os.path.exists(path):
        vocab = tokenization.load_vocabulary(path)
    elif experiment.tokenizer.vocab:
        vocab = tokenization.load_vocabulary(experiment.tokenizer.vocab)
    else:
        print(f"Learning a {experiment.tokenizer.vocabulary_size}-token WordPiece vocabulary "
              "from the corpus...", flush=True)
        vocab = tokenization.learn_vocabulary(
            training_lines(experiment), experiment.tokenizer.vocabulary_size, lower)
    if not os.path.exists(path):
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
        raise ValueError(
            "the evaluation text yields no sequence (empty --eval-corpus, or no line held "
            "out); give a larger --eval-corpus or --eval-holdout, or --eval-holdout 0 to "
            "train without evaluation")
    return ds.repeat(), count


def pretrain(experiment: Experiment, run_dir: str, strategy=None, verbose=None) -> dict:
    """Pretrains (or resumes pretraining) a BERT encoder with MLM and writes `run_dir`.

    Args:
      experiment: the configuration. `encoder` is derived from `train.preset`, the vocabulary
        and `data.max_sequence_length`.
      run_dir: output directory. If it holds a run with the same configuration, training
        resumes from its last checkpoint (a finished run: nothing is trained, its last
        record is returned); a different configuration is an error.
      strategy: a `tf.distribute.Strategy`; default chosen by `train.strategy`.
      verbose: progress (`callbacks.progress_callbacks`): None (default), a live progress bar
        on a terminal and otherwise (log file, CI, notebook) a line every 30 s or 10% of the
        run, with one at every checkpoint; 0 silent; 1 the bar; 2 the lines; or a
        `callbacks.ProgressLogger` for lines at its own interval.

    Returns:
      The last `history.json` record plus `run_dir`.
    """
    experiment.validate()  # before anything is written: a mistake leaves no trace
    t = experiment.train
    os.makedirs(run_dir, exist_ok=True)
    resolve_corpus(experiment, run_dir)
    tokenizer = prepare_vocabulary(experiment, run_dir)
    experiment.tokenizer.vocabulary_size = tokenizer.vocabulary_size
    if t.learning_rate is None:
        t.learning_rate = presets.default_learning_rate(t.preset)
    experiment.encoder = presets.encoder_config(
        t.preset, tokenizer.vocabulary_size,
        max_sequence_length=max(512, experiment.data.max_sequence_length),
        dropout=experiment.encoder.dropout)

    runs.claim_run_dir(experiment, run_dir)
    if runs.is_finished(run_dir, "pretrain"):
        print(f"{run_dir} is a finished run (encoder.keras and masked_lm.keras are there): "
              "nothing left to train. Choose a new --out to train again.", flush=True)
        with open(os.path.join(run_dir, "history.json")) as fh:
            return _finish(run_dir, json.load(fh))

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy(t.mixed_precision)
    strategy = strategy or choose_strategy(t.strategy)
    quiet_unused_pooler_warning()

    backup_dir = os.path.join(run_dir, "checkpoints")
    start_step = resumed_epoch(backup_dir) * t.save_every
    if start_step:
        print(f"Resuming {run_dir} from step {start_step} of {t.steps}.", flush=True)
    train_ds = pretraining_data.pretraining_dataset(**dataset_kwargs(experiment, tokenizer),
                                                    training=True, start_step=start_step)
    eval_ds, eval_batches = eval_dataset(experiment, tokenizer)

    with strategy.scope():
        encoder = BertEncoder.from_encoder_config(experiment.encoder)
        model = MaskedLM(encoder)
        optimizer = build_optimizer(
            t.learning_rate, t.steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon)
        compile_model(model, optimizer, "masked_accuracy", t.jit_compile, t.steps_per_execution)

    # The history row of an interval is written before the checkpoint that marks the
    # interval done: a kill between the two then only repeats the interval, never loses a row.
    callbacks = [
        HistoryRecorder(run_dir, t.save_every,
                                 t.batch_size * experiment.data.max_sequence_length,
                                 start_step=start_step),
        keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch",
                                         delete_checkpoint=False),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        ReseedDropout(),
    ]
    tokens_per_step = t.batch_size * experiment.data.max_sequence_length
    verbose, progress = progress_callbacks(verbose, steps_per_epoch=t.save_every,
                                           tokens_per_step=tokens_per_step,
                                           epochs_are_intervals=True)
    callbacks += progress
    model.fit(train_ds, epochs=t.steps // t.save_every, steps_per_epoch=t.save_every,
              validation_data=eval_ds, validation_steps=eval_batches or None,
              callbacks=callbacks, verbose=verbose, shuffle=False)

    # Both files present mark the run finished (`runs.FINAL_FILES`); a kill before then
    # resumes at the last checkpoint, which trains nothing and writes them again.
    runs.save_model(encoder, os.path.join(run_dir, "encoder.keras"))
    runs.save_model(model, os.path.join(run_dir, "masked_lm.keras"))
    return _finish(run_dir, callbacks[0].records)


def _finish(run_dir: str, records: list[dict]) -> dict:
    """Removes the finished run's checkpoints; returns its last history record + `run_dir`."""
    runs.prune_checkpoints(run_dir)
    summary = dict(records[-1]) if records else {}
    summary["run_dir"] = run_dir
    return summary

