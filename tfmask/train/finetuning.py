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
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from tfmask import presets, runs
from tfmask.config import FinetuneExperiment
from tfmask.model.encoder import BertEncoder, with_dropout
from tfmask.model.heads import SequenceClassifier, TokenClassifier
from tfmask.text import finetuning_data, tokenization
from tfmask.text.examples import Examples, load_train_valid, resolve_data
from tfmask.train.callbacks import (ReseedDropout, StepRecorder, ValidationCallback,
                                    progress_callbacks, quiet_unused_pooler_warning,
                                    record_interval, resumed_epoch)
from tfmask.train.evaluation import Evaluator
from tfmask.train.optimizer import build_optimizer, compile_model

#: The validation metric that picks the best epoch and drives early stopping.
MONITOR = {"ner": "f1", "sentiment": "accuracy"}


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def _initial_encoder(experiment: FinetuneExperiment, train: Examples, run_dir: str):
    """(tokenizer, encoder) from --init, or a learned vocabulary + a random preset encoder."""
    t = experiment.train
    if t.init:
        return runs.load_tokenizer(t.init), runs.load_encoder(t.init)
    vocab_path = os.path.join(run_dir, runs.VOCAB)
    if os.path.exists(vocab_path):
        vocab = tokenization.load_vocabulary(vocab_path)
    else:
        lines = ([" ".join(words) for words in train.texts] if experiment.task == "ner"
                 else list(train.texts))
        print(f"No --init: learning a {t.vocabulary_size}-token vocabulary from the training "
              f"text and training a random {t.preset} encoder.", flush=True)
        vocab = tokenization.learn_vocabulary(lines, t.vocabulary_size,
                                              experiment.tokenizer.lower_case)
    config = presets.encoder_config(t.preset, len(vocab),
                                    max_sequence_length=max(512,
                                                            experiment.data.max_sequence_length))
    tokenizer = tokenization.WordPieceTokenizer(vocab, experiment.tokenizer.lower_case)
    return tokenizer, BertEncoder.from_encoder_config(config)


def build_classifier(task: str, encoder, num_classes: int, dropout: float):
    """The task's head on `encoder`: a label per word piece (NER) or per sequence."""
    head = TokenClassifier if task == "ner" else SequenceClassifier
    return head(encoder, num_classes, dropout=dropout)


# ----------------------------------------------------------------------------------------------
# finetune()
# ----------------------------------------------------------------------------------------------
def finetune(experiment: FinetuneExperiment, run_dir: str, verbose=None) -> dict:
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

    Returns:
      The best validation metrics (what `metrics.json` holds) plus `run_dir`.
    """
    experiment.validate()  # before anything is written: a mistake leaves no trace
    t, d = experiment.train, experiment.data
    os.makedirs(run_dir, exist_ok=True)
    resolve_data(experiment, run_dir)
    train, valid, labels = load_train_valid(experiment)
    print(f"{experiment.task}: {len(train)} training and {len(valid)} validation examples, "
          f"{len(labels)} labels.", flush=True)

    keras.utils.set_random_seed(t.seed)
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy(t.mixed_precision)
    if t.init:
        experiment.tokenizer = runs.tokenizer_config(t.init)
    tokenizer, encoder = _initial_encoder(experiment, train, run_dir)
    if t.encoder_dropout is not None and t.encoder_dropout != encoder.dropout:
        encoder = with_dropout(encoder, t.encoder_dropout)
    experiment.encoder = encoder.encoder_config()
    experiment.tokenizer.vocabulary_size = tokenizer.vocabulary_size
    experiment.labels = list(labels)
    runs.claim_run_dir(experiment, run_dir)
    if runs.is_finished(run_dir, "finetune"):
        print(f"{run_dir} is a finished run (model.keras is there): nothing left to train. "
              "Choose a new --out to train again.", flush=True)
        return _finish(run_dir)
    runs.write_vocabulary(run_dir, tokenizer.vocab)
    runs.write_labels(run_dir, labels)

    model = build_classifier(experiment.task, encoder, len(labels), t.dropout)
    quiet_unused_pooler_warning()
    train_ds = _train_dataset(experiment, train, tokenizer)
    steps_per_epoch = int(train_ds.cardinality())
    if steps_per_epoch < 0:  # NER windows: known only after tokenizing, so count them once
        steps_per_epoch = sum(1 for _ in _train_dataset(experiment, train, tokenizer,
                                                        plain=True))
    if not d.length_buckets:  # the count is exact: tell Keras (progress bar, no warning)
        train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(steps_per_epoch))
    evaluator = Evaluator(experiment.task, valid, labels, tokenizer, d.max_sequence_length,
                          window_stride=d.window_stride, truncation=d.truncation)
    monitor = MONITOR[experiment.task]
    fit_verbose, progress = progress_callbacks(verbose, steps_per_epoch=steps_per_epoch)

    phases = [("frozen", t.freeze_epochs, False), ("main", t.epochs, True)] if t.freeze_epochs \
        else [("main", t.epochs, True)]
    start = 0
    for name, end_epoch, encoder_trainable in phases:
        backup_dir = os.path.join(run_dir, "checkpoints", name)
        resumed = resumed_epoch(backup_dir)
        if resumed >= end_epoch:  # this phase finished in an earlier (interrupted) run
            start = end_epoch
            continue
        # `trainable` is read when the train step is built: each phase compiles anew.
        encoder.trainable = encoder_trainable
        phase_steps = (end_epoch - start) * steps_per_epoch
        optimizer = build_optimizer(
            t.learning_rate, phase_steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon, layer_decay=t.layer_decay, num_layers=experiment.encoder.num_layers)
        compile_model(model, optimizer, "accuracy", t.jit_compile)
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
            validation,
            step_recorder,
            keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False),
            ReseedDropout(),
            keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        ]
        if t.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=f"val_{monitor}", mode="max", patience=t.early_stopping_patience))
        callbacks += progress  # after validation: its epoch line shows the val_* logs
        # BackupAndRestore sets `model._initial_epoch` when it restores, and Keras keeps it
        # across fit calls: clear it so the next phase starts where it should.
        model._initial_epoch = None
        model.fit(train_ds, epochs=end_epoch, initial_epoch=start, callbacks=callbacks,
                  verbose=fit_verbose, shuffle=False)  # shuffled in tf.data, every epoch
        start = end_epoch

    runs.load_weights(model, os.path.join(run_dir, "best.weights.h5"))
    encoder.trainable = True
    runs.save_model(model, os.path.join(run_dir, "model.keras"))  # marks the run finished
    return _finish(run_dir)


def _finish(run_dir: str) -> dict:
    """Removes the finished run's checkpoints; returns its best metrics + `run_dir`."""
    runs.prune_checkpoints(run_dir)
    with open(os.path.join(run_dir, "metrics.json")) as fh:
        best = json.load(fh)
    best["run_dir"] = run_dir
    return best


def _mean_over_labelled_words(x, y, sample_weight):
    """Scales a NER batch's weights to sum to its size B * L.

    Keras's default loss reduction divides the weighted sum by every slot, padding and
    non-first pieces included, so a batch's loss (hence its step) would shrink with its share
    of padding. Rescaled, the loss is the mean cross-entropy over the labelled words of the
    batch, as in BERT's and Hugging Face's token classification.
    """
    size = tf.cast(tf.size(sample_weight), sample_weight.dtype)
    return x, y, sample_weight * size / tf.maximum(tf.reduce_sum(sample_weight), 1.0)


def _train_dataset(experiment: FinetuneExperiment, train: Examples, tokenizer,
                   plain: bool = False) -> tf.data.Dataset:
    """The training batches: shuffled, bucketed and augmented unless `plain` (for counting)."""
    d, t = experiment.data, experiment.train
    common = dict(tokenizer=tokenizer, max_sequence_length=d.max_sequence_length,
                  batch_size=t.batch_size, shuffle=not plain, seed=t.seed,
                  mask_rate=0.0 if plain else t.mask_rate,
                  length_buckets=(d.length_buckets or None) if not plain else None)
    if experiment.task == "ner":
        ds = finetuning_data.ner_dataset(train.texts, train.label_ids,
                                       window_stride=d.window_stride, **common)
        return ds.map(_mean_over_labelled_words, num_parallel_calls=tf.data.AUTOTUNE)
    return finetuning_data.classification_dataset(train.texts, train.label_ids,
                                                truncation=d.truncation, **common)
