"""`finetune()`: NER and sentiment heads on a BERT encoder, trained with `model.fit`.

A fine-tuning run directory holds

    config.json          the resolved `FinetuneExperiment` (encoder, tokenizer, labels included)
    vocab.txt            the tokenizer's vocabulary (copied from --init, or learned)
    labels.txt           label names, index = id (saved with the model: ids mean these)
    model.keras          the best `TokenClassifier` / `SequenceClassifier` (by validation metric)
    best.weights.h5      the same weights, written whenever the validation metric improves
    metrics.json         the best validation metrics (NER: precision, recall, f1, per_type;
                         sentiment: accuracy, macro_f1, per_class, confusion_matrix) + epoch
    history.json         one record per epoch: loss, val_loss and validation metrics
    train_steps.json     the training loss and learning rate every few steps (`StepRecorder`)
    history.png          loss (per few steps and per epoch), validation metric with the best
                         epoch marked, learning rate
    per_type_f1.png      NER: entity F1 per type at the best epoch
    confusion_matrix.png sentiment: at the best epoch
    tensorboard/         TensorBoard logs
    checkpoints/         `BackupAndRestore` state (weights + optimizer) while the run is
                         unfinished: re-running the same command resumes here

`model.keras` and `best.weights.h5` hold weights only, no optimizer. `model.keras` is written
after the last epoch (or an early stop): once it is there the run is finished, `checkpoints/`
is removed (nothing resumes a finished run), and re-running the command trains nothing and
returns the best metrics.

Validation metrics are computed by `evaluation.Evaluator` over the whole validation set at
every epoch end (`callbacks.ValidationCallback`), the same code `tfmask evaluate` runs.

Across workers (`--strategy multi_worker`, `tfmask.train.distribute`) every worker runs
`finetune` with the same arguments: the chief learns the vocabulary (without `--init`), counts
the batches, scores the validation set and writes the run directory; the others receive what
they need from it and write into temporary folders.
"""

from __future__ import annotations

import json
import os
import time

import keras
import tensorflow as tf

from tfmask import presets, runs
from tfmask.config import FinetuneExperiment
from tfmask.model.encoder import BertEncoder, with_dropout
from tfmask.model.heads import SequenceClassifier, TokenClassifier
from tfmask.text import finetuning_data, tokenization
from tfmask.text.examples import Examples, load_train_valid, resolve_data
from tfmask.train import checkpoints, distribute, precision
from tfmask.train.callbacks import (ReseedDropout, StepRecorder, ValidationCallback,
                                    progress_callbacks, quiet_unused_pooler_warning,
                                    record_interval, resumed_epoch)
from tfmask.train.evaluation import Evaluator
from tfmask.train.optimizer import build_optimizer, compile_model

#: What `checkpoints.StopOnNonFiniteLoss` suggests when the loss is NaN or infinite.
_NON_FINITE_ADVICE = ("Try a lower --learning-rate, a longer --warmup-steps, a smaller "
                      "--set train.clipnorm=..., or --precision float32, in a new --out (a "
                      "run directory keeps its configuration).")
#: The validation metric that picks the best epoch and drives early stopping.
MONITOR = {"ner": "f1", "sentiment": "accuracy", "classify": "accuracy"}


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def _initial_encoder(experiment: FinetuneExperiment, train: Examples, run_dir: str, strategy):
    """(tokenizer, encoder) from --init, or a learned vocabulary + a random preset encoder,
    created under `strategy`; across workers the chief learns the vocabulary."""
    t = experiment.train
    if t.init:
        with strategy.scope():
            return runs.load_tokenizer(t.init), runs.load_encoder(t.init)
    vocab = distribute.chief_first(
        strategy, lambda: {"vocab": _vocabulary(experiment, train, run_dir)})["vocab"]
    config = presets.encoder_config(t.preset, len(vocab),
                                    max_sequence_length=max(512,
                                                            experiment.data.max_sequence_length))
    tokenizer = tokenization.WordPieceTokenizer(vocab, experiment.tokenizer.lower_case)
    with strategy.scope():
        return tokenizer, BertEncoder.from_encoder_config(config)


def _vocabulary(experiment: FinetuneExperiment, train: Examples, run_dir: str) -> list[str]:
    """`RUN/vocab.txt` (resume), or one learned from the training text."""
    t = experiment.train
    vocab_path = os.path.join(run_dir, runs.VOCAB)
    if os.path.exists(vocab_path):
        vocab = tokenization.load_vocabulary(vocab_path)
    else:
        lines = ([" ".join(words) for words in train.texts] if experiment.task == "ner"
                 else list(train.texts) + list(train.text_pairs or []))
        print(f"No --init: learning a {t.vocabulary_size}-token vocabulary from the training "
              f"text and training a random {t.preset} encoder.", flush=True)
        vocab = tokenization.learn_vocabulary(lines, t.vocabulary_size,
                                              experiment.tokenizer.lower_case)
    return vocab


def build_classifier(task: str, encoder, num_classes: int, dropout: float):
    """The task's head on `encoder`: a label per word piece (NER) or per sequence."""
    head = TokenClassifier if task == "ner" else SequenceClassifier
    return head(encoder, num_classes, dropout=dropout)


# ----------------------------------------------------------------------------------------------
# finetune()
# ----------------------------------------------------------------------------------------------
def finetune(experiment: FinetuneExperiment, run_dir: str, verbose=None, strategy=None) -> dict:
    """Fine-tunes a NER or sentiment head and writes `run_dir` (see the module docstring).

    Args:
      experiment: the configuration (`task`, `data`, `train`); `encoder`, `tokenizer` and
        `labels` are filled in here.
      run_dir: output directory; re-running with the same configuration resumes (a
        finished run: nothing is trained, its best metrics are returned).
      verbose: progress (`callbacks.progress_callbacks`): None (default), a live progress bar
        on a terminal and otherwise (log file, CI, notebook) a line every 30 s or 10% of an
        epoch, with one at every epoch end; 0 silent; 1 the bar; 2 the lines; or a
        `callbacks.ProgressLogger` for lines at its own interval.
      strategy: a `tf.distribute.Strategy`; default chosen by `train.strategy` (before
        anything else: a multi-worker strategy must precede every other TensorFlow op).
        Across workers every worker calls `finetune` with the same arguments; the chief
        writes `run_dir`, the others temporary folders (`distribute.worker_directory`).

    Returns:
      The best validation metrics (what `metrics.json` holds) plus `run_dir`.
    """
    experiment.validate()  # before anything is written: a mistake leaves no trace
    strategy = strategy or distribute.choose_strategy(experiment.train.strategy)
    policy = precision.choose(experiment.train, strategy)
    with distribute.worker_directory(strategy, run_dir) as out, precision.policy_scope(policy):
        best = _finetune(experiment, out, strategy, verbose)
    best["run_dir"] = run_dir
    return best


def _finetune(experiment: FinetuneExperiment, run_dir: str, strategy, verbose) -> dict:
    """`finetune` on one worker, which writes into `run_dir` (the caller's on the chief, a
    temporary folder on the other workers)."""
    t, d = experiment.train, experiment.data
    static = distribute.needs_static_shapes(strategy)
    os.makedirs(run_dir, exist_ok=True)
    resolve_data(experiment, run_dir)
    train, valid, labels = load_train_valid(experiment)
    print(f"{experiment.task}: {len(train)} training and {len(valid)} validation examples, "
          f"{len(labels)} labels.", flush=True)

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.init:
        experiment.tokenizer = runs.tokenizer_config(t.init)
    tokenizer, encoder = _initial_encoder(experiment, train, run_dir, strategy)
    rate = encoder.dropout if t.encoder_dropout is None else t.encoder_dropout
    # A `.keras` file keeps the dtype policy it was saved with (float32 for an import): the
    # rebuilt encoder takes the run's (`precision.policy_scope`), and the new dropout rate.
    if rate != encoder.dropout or encoder.dtype_policy.name != t.precision:
        with strategy.scope():
            encoder = with_dropout(encoder, rate)
    experiment.encoder = encoder.encoder_config()
    experiment.tokenizer.vocabulary_size = tokenizer.vocabulary_size
    experiment.labels = list(labels)
    phases = [("frozen", t.freeze_epochs, False), ("main", t.epochs, True)] if t.freeze_epochs \
        else [("main", t.epochs, True)]
    train_ds = _train_dataset(experiment, train, tokenizer, static_shapes=static)

    def claim() -> dict:  # on the chief; the other workers get its answer
        runs.claim_run_dir(experiment, run_dir)
        if runs.is_finished(run_dir, "finetune"):
            print(f"{run_dir} is a finished run (model.keras is there): nothing left to "
                  "train. Choose a new --out to train again.", flush=True)
            return {"finished": _finish(run_dir)}
        # NER windows: their number is known only after tokenizing, so count them once.
        steps = train_ds.cardinality()
        if steps < 0:
            steps = sum(1 for _ in _train_dataset(experiment, train, tokenizer, plain=True,
                                                  static_shapes=static))
        return {"finished": None, "steps_per_epoch": int(steps),
                "resumed": {name: resumed_epoch(os.path.join(run_dir, "checkpoints", name))
                            for name, _, _ in phases}}

    claimed = distribute.chief_first(strategy, claim)
    if claimed["finished"] is not None:
        return claimed["finished"]
    runs.write_vocabulary(run_dir, tokenizer.vocab)
    runs.write_labels(run_dir, labels)
    runs.record_environment(run_dir, resumed=os.path.isdir(os.path.join(run_dir,
                                                                        runs.CHECKPOINTS)))

    with strategy.scope():
        model = build_classifier(experiment.task, encoder, len(labels), t.dropout)
    distribute.enable_multi_worker_fit(model, strategy)
    quiet_unused_pooler_warning()
    steps_per_epoch = claimed["steps_per_epoch"]
    # The count is exact (buckets too: a bucket's batches do not depend on the order): tell
    # Keras (progress bar, no "ran out of data" warning).
    train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(steps_per_epoch))
    evaluator = distribute.OnChief(strategy, Evaluator(
        experiment.task, valid, labels, tokenizer, d.max_sequence_length,
        window_stride=d.window_stride, truncation=d.truncation))
    monitor = MONITOR[experiment.task]
    fit_verbose, progress = progress_callbacks(verbose, steps_per_epoch=steps_per_epoch)

    start = iterated = 0  # iterated: epochs the training data went through in this process
    for name, end_epoch, encoder_trainable in phases:
        backup_dir = os.path.join(run_dir, "checkpoints", name)
        resumed = claimed["resumed"][name]
        if resumed >= end_epoch:  # this phase finished in an earlier (interrupted) run
            start = end_epoch
            continue
        # `trainable` is read when the train step is built: each phase compiles anew.
        encoder.trainable = encoder_trainable
        phase_steps = (end_epoch - start) * steps_per_epoch
        with strategy.scope():  # the optimizer's variables belong to the strategy too
            optimizer = build_optimizer(
                t.learning_rate, phase_steps, t.warmup_steps, t.weight_decay, t.clipnorm,
                t.adam_epsilon, layer_decay=t.layer_decay,
                num_layers=experiment.encoder.num_layers)
            compile_model(model, precision.with_loss_scaling(optimizer, t.precision),
                          "accuracy", t.jit_compile or static)
        if resumed:
            print(f"Resuming {run_dir} ({name} phase) after epoch {resumed}.", flush=True)
        validation = ValidationCallback(evaluator, run_dir, monitor,
                                        start_epoch=max(resumed, start), verbose=verbose != 0)
        step_recorder = StepRecorder(run_dir, record_interval(steps_per_epoch),
                                     start_epoch=max(resumed, start),
                                     steps_per_epoch=steps_per_epoch)
        # Validation first: its metrics, history row and best weights are written before
        # BackupAndRestore marks the epoch done (a kill in between repeats the epoch instead
        # of losing its record), and TensorBoard / EarlyStopping see its val_* logs.
        callbacks = [
            FirstStepTimer(t.jit_compile or static),  # first: its logs reach `validation`
            validation,
            step_recorder,
            checkpoints.Checkpoints(backup_dir, delete_checkpoint=False),
            distribute.SyncFromChief(strategy),  # right after the restore
            ReseedDropout(),
            checkpoints.StopOnNonFiniteLoss(None, _NON_FINITE_ADVICE),
            keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        ]
        if t.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=f"val_{monitor}", mode="max", patience=t.early_stopping_patience))
        callbacks += progress  # after validation: its epoch line shows the val_* logs
        # BackupAndRestore sets `model._initial_epoch` when it restores, and Keras keeps it
        # across fit calls: clear it so the next phase starts where it should.
        model._initial_epoch = None
        # tf.data reshuffles the examples (and draws new masking seeds) at each iteration of
        # the data, and Keras's `fit` (no steps_per_epoch) starts two an epoch: the next
        # epoch's at each epoch end, and another one that it uses at the next epoch's start.
        # A resumed run starts (and drops) as many for the epochs it skips, so it sees the
        # order and masks of an uninterrupted run (test_reliability checks it).
        if isinstance(train_ds, tf.data.Dataset):
            for _ in range(2 * (max(resumed, start) - iterated)):
                iter(train_ds)
        model.fit(train_ds, epochs=end_epoch, initial_epoch=start, callbacks=callbacks,
                  verbose=fit_verbose, shuffle=False)  # shuffled in tf.data, every epoch
        start = iterated = end_epoch

    def save() -> dict:  # the chief's model (the other workers' folders are thrown away)
        runs.load_weights(model, os.path.join(run_dir, "best.weights.h5"))
        encoder.trainable = True
        runs.save_model(model, os.path.join(run_dir, "model.keras"))  # marks it finished
        return _finish(run_dir)

    return distribute.chief_first(strategy, save)


class FirstStepTimer(keras.callbacks.Callback):
    """The seconds from the start of `fit` to the end of its first step: the input pipeline's
    start, tracing and (with XLA) the first compile. Printed, and recorded in `history.json`
    as `first_step_seconds` of the fit's first epoch (via the epoch's logs)."""

    def __init__(self, jit_compile: bool):
        super().__init__()
        self.jit_compile, self.seconds = jit_compile, None

    def on_train_begin(self, logs=None):
        self._start, self.seconds, self._epochs = time.perf_counter(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None:
            self.seconds = time.perf_counter() - self._start
            print(f"First training step after {self.seconds:.1f} s (input pipeline, tracing"
                  f"{', XLA compile of the first shape' if self.jit_compile else ''}).",
                  flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self._epochs == 0 and self.seconds is not None and logs is not None:
            logs["first_step_seconds"] = self.seconds
        self._epochs += 1


def _finish(run_dir: str) -> dict:
    """Removes the finished run's checkpoints; returns its best metrics + `run_dir`."""
    runs.prune_checkpoints(run_dir)
    with open(os.path.join(run_dir, "metrics.json")) as fh:
        best = json.load(fh)
    best["run_dir"] = run_dir
    return best


def _train_dataset(experiment: FinetuneExperiment, train: Examples, tokenizer,
                   plain: bool = False, static_shapes: bool = False) -> tf.data.Dataset:
    """The training batches: shuffled and augmented unless `plain` (for counting: the same
    number of batches, length buckets included); with `static_shapes` (a TPU) every batch is
    padded to `--seq-len` and a smaller last batch is dropped."""
    d, t = experiment.data, experiment.train
    common = dict(tokenizer=tokenizer, max_sequence_length=d.max_sequence_length,
                  batch_size=t.batch_size, shuffle=not plain, seed=t.seed,
                  mask_rate=0.0 if plain else t.mask_rate,
                  length_buckets=None if static_shapes else (d.length_buckets or None),
                  static_shapes=static_shapes)
    if experiment.task == "ner":
        ds = finetuning_data.ner_dataset(train.texts, train.label_ids,
                                         window_stride=d.window_stride, **common)
    else:
        ds = finetuning_data.classification_dataset(train.texts, train.label_ids,
                                                    truncation=d.truncation,
                                                    text_pairs=train.text_pairs, **common)
    # Across workers each worker builds the same global batches and keeps its slice of each.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
