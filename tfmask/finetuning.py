"""`finetune()` and `evaluate()`: NER and sentiment heads on a BERT encoder, with honest metrics.

A fine-tuning run directory holds

    config.json          the resolved `FinetuneExperiment` (encoder, tokenizer, labels included)
    vocab.txt            the tokenizer's vocabulary (copied from --init, or learned)
    labels.txt           label names, index = id (saved with the model: ids mean these)
    model.keras          the best `TokenClassifier` / `SequenceClassifier` (by validation metric)
    best.weights.h5      the same weights, written whenever the validation metric improves
    metrics.json         the best validation metrics (NER: precision, recall, f1, per_type;
                         sentiment: accuracy, macro_f1, per_class, confusion_matrix) + epoch
    history.json/.png    one record per epoch: loss, val_loss and validation metrics
    per_type_f1.png      NER: entity F1 per type at the best epoch
    confusion_matrix.png sentiment: at the best epoch
    tensorboard/         TensorBoard logs
    checkpoints/         `BackupAndRestore` state: re-running the same command resumes

Validation metrics are computed by `Evaluator` over the whole validation set at every epoch
end, the same code `tfmask evaluate` runs: NER predictions are merged from overlapping
windows back to one tag per word, then scored on entities exactly as seqeval's default mode
(conlleval) scores them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfmask import finetune_data, metrics, plots, presets, readers, runs, tokenization, training
from tfmask.config import (  # noqa: F401  RunConflictError: raised here
    EncoderConfig, FinetuneExperiment, RunConflictError, claim_run_dir)

TASKS = ("ner", "sentiment")
#: The validation metric that picks the best epoch and drives early stopping.
MONITOR = {"ner": "f1", "sentiment": "accuracy"}


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Examples:
    """One split, ready for the pipelines: NER words + tag ids, or texts + class ids."""

    source: str
    texts: list  # NER: list of word lists; sentiment: list of strings
    labels: list  # NER: list of tag-id lists; sentiment: list of ints

    def __len__(self):
        return len(self.texts)


def _ner_examples(sentences: list[readers.Sentence], labels: list[str], source: str
                  ) -> Examples:
    index = {t: i for i, t in enumerate(labels)}
    ids = []
    for s in sentences:
        for offset, tag in enumerate(s.tags):
            if tag not in index:
                raise readers.ReaderError(
                    source, s.line + offset, f"tag {tag!r} does not occur in the training "
                    f"data (labels: {' '.join(labels)})")
        ids.append([index[t] for t in s.tags])
    return Examples(source, [list(s.words) for s in sentences], ids)


def _read_ner(path_or_split: str, config, tfds_split: bool) -> list[readers.Sentence]:
    d = config.data
    if tfds_split:
        return readers.tfds_conll(path_or_split, d.tfds_data_dir, name=d.tfds)
    return readers.read_conll(path_or_split, tag_column=d.tag_column)


def _column(value: str | None):
    """A column given on the command line: an index when it is an integer, else a name."""
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _read_sentiment(path_or_split: str, config, tfds_split: bool,
                    label_names: list[str] | None):
    d = config.data
    if tfds_split:
        texts, labels, names = readers.tfds_classification(d.tfds, path_or_split,
                                                           d.tfds_data_dir)
        if label_names is not None and names != label_names:
            raise ValueError(f"{d.tfds}:{path_or_split}: label names {names} differ from the "
                             f"model's {label_names}")
        return texts, labels, names
    return readers.read_classification(path_or_split, _column(d.text_column),
                                       _column(d.label_column), label_names=label_names)


def load_split(experiment: FinetuneExperiment, source: str, tfds_split: bool = False,
               labels: list[str] | None = None) -> tuple[Examples, list[str]]:
    """Reads one split. `labels=None` learns the label set (training data); otherwise the
    split is mapped onto `labels`, and a label outside them is an error naming its line."""
    where = f"{experiment.data.tfds}:{source}" if tfds_split else source
    if experiment.task == "ner":
        sentences = _read_ner(source, experiment, tfds_split)
        if labels is None:
            labels = readers.label_vocabulary(sentences)
        return _ner_examples(sentences, labels, where), labels
    texts, ids, names = _read_sentiment(source, experiment, tfds_split, labels)
    return Examples(where, texts, ids), names


def resolve_data(experiment: FinetuneExperiment, run_dir: str) -> None:
    """Without --train and --tfds, uses the embedded data sets the project writes itself."""
    d = experiment.data
    if d.train or d.tfds:
        if d.train and not d.valid:
            raise ValueError("--valid is required with --train (validation picks the best "
                             "epoch and is what metrics.json reports)")
        return
    from tfmask import embedded

    paths = embedded.write_all(os.path.join(run_dir, "embedded_data"), seed=0)
    if experiment.task == "ner":
        d.train, d.valid = paths["ner_train"], paths["ner_valid"]
    else:
        d.train, d.valid = paths["sentiment_train"], paths["sentiment_dev"]


def load_train_valid(experiment: FinetuneExperiment):
    d = experiment.data
    if d.train:  # files win over a recipe's TFDS default
        train, labels = load_split(experiment, d.train)
        valid, _ = load_split(experiment, d.valid, labels=labels)
    else:
        train, labels = load_split(experiment, d.tfds_train_split, tfds_split=True)
        valid, _ = load_split(experiment, d.tfds_valid_split, tfds_split=True, labels=labels)
    if d.max_train_examples:
        train = Examples(train.source, train.texts[: d.max_train_examples],
                         train.labels[: d.max_train_examples])
    if not len(train) or not len(valid):
        raise ValueError(f"{train.source if not len(train) else valid.source}: no examples")
    return train, valid, labels


# ----------------------------------------------------------------------------------------------
# Evaluation (shared by the per-epoch callback and `tfmask evaluate`)
# ----------------------------------------------------------------------------------------------
def _weighted_cross_entropy(logits: np.ndarray, y: np.ndarray, weight: np.ndarray):
    """Sum over weighted positions of -log softmax(logits)[y], and the weight sum."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, y[..., None].astype(np.int64), -1)[..., 0]
    return float(-(picked * weight).sum()), float(weight.sum())


class Evaluator:
    """Scores a model on one split with the task's metrics.

    NER: windows (`finetune_data.ner_windows`) -> logits -> `merge_windows` -> one tag per
    word -> `metrics.entity_scores` (seqeval's default mode). Sentiment: `accuracy`,
    `macro_f1`, `per_class`, `confusion_matrix`. Both add `loss` (mean cross-entropy over the
    labelled positions) and `examples`.
    """

    def __init__(self, task: str, examples: Examples, labels: list[str],
                 tokenizer: tokenization.WordPieceTokenizer, max_sequence_length: int,
                 batch_size: int = 64, window_stride: int | None = None,
                 truncation: str = "head"):
        self.task, self.examples, self.labels = task, examples, labels
        if task == "ner":
            self.dataset = finetune_data.ner_windows(
                examples.texts, examples.labels, tokenizer, max_sequence_length, batch_size,
                window_stride=window_stride)
        else:
            self.dataset = finetune_data.classification_dataset(
                examples.texts, examples.labels, tokenizer, max_sequence_length, batch_size,
                truncation=truncation)
        # Tokenize once, not at every epoch.
        self.dataset = self.dataset.cache()
        self._forward = {}

    def _forward_fn(self, model):
        """One traced inference function per model (batches vary in length: [None, None])."""
        if id(model) not in self._forward:
            spec = {name: tf.TensorSpec([None, None], tf.int32)
                    for name in finetune_data.INPUT_NAMES}
            self._forward = {id(model): tf.function(lambda x: model(x, training=False),
                                                    input_signature=[spec])}
        return self._forward[id(model)]

    def predict(self, model: keras.Model):
        """Per-example predictions (label ids) and the mean validation loss."""
        forward = self._forward_fn(model)
        loss_sum = weight_sum = 0.0
        predictions, windows, weights = [], [], []
        for batch in self.dataset:
            x, y, weight = batch[:3]
            logits = forward(x).numpy()
            loss, count = _weighted_cross_entropy(logits, y.numpy(), weight.numpy())
            loss_sum, weight_sum = loss_sum + loss, weight_sum + count
            predictions.append(logits.argmax(-1))
            weights.append(weight.numpy())
            if self.task == "ner":
                windows.append({k: v.numpy() for k, v in batch[3].items()})
        mean_loss = loss_sum / max(weight_sum, 1.0)
        if self.task == "ner":
            per_word = finetune_data.merge_windows(
                predictions, windows, weights, [len(w) for w in self.examples.texts])
            return [p.tolist() for p in per_word], mean_loss
        return np.concatenate(predictions).tolist(), mean_loss

    def __call__(self, model: keras.Model) -> dict:
        predicted, loss = self.predict(model)
        if self.task == "ner":
            true = [[self.labels[i] for i in s] for s in self.examples.labels]
            pred = [[self.labels[i] for i in s] for s in predicted]
            scores = metrics.entity_scores(true, pred)
        else:
            scores = metrics.classification_scores(self.examples.labels, predicted,
                                                   self.labels)
        scores["loss"] = loss
        scores["examples"] = len(self.examples)
        return scores


class ValidationCallback(keras.callbacks.Callback):
    """At every epoch end: scores the validation set, adds `val_*` to the logs (so
    EarlyStopping and TensorBoard see them), appends to `history.json`, plots, and keeps the
    best epoch's weights (`best.weights.h5`) and metrics (`metrics.json`)."""

    def __init__(self, evaluator: Evaluator, run_dir: str, monitor: str, start_epoch: int = 0,
                 verbose: bool = True):
        super().__init__()
        self.evaluator, self.run_dir, self.monitor = evaluator, run_dir, monitor
        self.verbose = verbose
        self.history_path = os.path.join(run_dir, "history.json")
        self.records = []
        if os.path.exists(self.history_path):  # resume: keep the epochs that were restored
            with open(self.history_path) as fh:
                self.records = [r for r in json.load(fh) if r["epoch"] <= start_epoch]
        previous = [r[f"val_{monitor}"] for r in self.records]
        self.best = max(previous) if previous else -np.inf
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.perf_counter() - self._epoch_start
        scores = self.evaluator(self.model)
        record = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
                  "train_seconds": train_seconds,
                  "learning_rate": float(keras.ops.convert_to_numpy(
                      self.model.optimizer.learning_rate))}
        for key, value in scores.items():
            if isinstance(value, (int, float)) and key != "examples":
                record[f"val_{key}"] = float(value)
                logs[f"val_{key}"] = float(value)  # seen by the callbacks that follow
        self.records = [r for r in self.records if r["epoch"] < epoch + 1] + [record]
        _write_json(self.history_path, self.records)
        improved = scores[self.monitor] > self.best
        if improved:
            self.best = scores[self.monitor]
            self.model.save_weights(os.path.join(self.run_dir, "best.weights.h5"))
            _write_json(os.path.join(self.run_dir, "metrics.json"),
                        {**scores, "epoch": epoch + 1})
            _plot_best(scores, self.evaluator.labels, self.run_dir)
        if self.verbose and improved:
            print(f"epoch {epoch + 1}: best so far, val_{self.monitor} "
                  f"{scores[self.monitor]:.4f} (saved best.weights.h5)", flush=True)


    def on_train_end(self, logs=None):
        # Once per fit, not per epoch: a matplotlib figure costs ~0.25 s, and TensorBoard
        # is the live view.
        if self.records:
            plots.plot_finetune_history(self.records, os.path.join(self.run_dir, "history.png"),
                                        self.monitor)


def _plot_best(scores: dict, labels: list[str], run_dir: str) -> None:
    if "per_type" in scores:
        plots.plot_per_type_f1(scores["per_type"], os.path.join(run_dir, "per_type_f1.png"))
    if "confusion_matrix" in scores:
        plots.plot_confusion_matrix(scores["confusion_matrix"], labels,
                                    os.path.join(run_dir, "confusion_matrix.png"))


def _write_json(path: str, value) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(value, fh, indent=1)
    os.replace(tmp, path)  # never half-written after a kill


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def _initial_encoder(experiment: FinetuneExperiment, train: Examples, run_dir: str):
    """(tokenizer, encoder) from --init, or a learned vocabulary + a random preset encoder."""
    t = experiment.train
    if t.init:
        return runs.load_tokenizer(t.init), runs.load_encoder(t.init)
    from tfmask.encoder import BertEncoder

    vocab_path = os.path.join(run_dir, "vocab.txt")
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


def encoder_config_of(encoder) -> EncoderConfig:
    """The `EncoderConfig` a built `BertEncoder` was made from."""
    return EncoderConfig(**{k: getattr(encoder, k) for k in dataclasses.asdict(EncoderConfig())})


def with_dropout(encoder, rate: float):
    """The same encoder (config and weights) with dropout `rate` inside it."""
    from tfmask.encoder import BertEncoder

    config = dataclasses.replace(encoder_config_of(encoder), dropout=float(rate))
    rebuilt = BertEncoder.from_encoder_config(config)
    rebuilt.set_weights(encoder.get_weights())
    return rebuilt


def build_classifier(task: str, encoder, num_labels: int, dropout: float):
    from tfmask.heads import SequenceClassifier, TokenClassifier

    if task == "ner":
        return TokenClassifier(encoder, num_labels, dropout=dropout)
    return SequenceClassifier(encoder, num_labels, dropout=dropout)


def _compile(model, optimizer, jit_compile: bool) -> None:
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # NER: accuracy over first pieces (weight 1), a quick sanity number in the progress
        # bar; the metric that counts is the entity F1 of ValidationCallback.
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile)


# ----------------------------------------------------------------------------------------------
# finetune()
# ----------------------------------------------------------------------------------------------
def finetune(experiment: FinetuneExperiment, run_dir: str, verbose=None) -> dict:
    """Fine-tunes a NER or sentiment head and writes `run_dir` (see the module docstring).

    Args:
      experiment: the configuration (`task`, `data`, `train`); `encoder`, `tokenizer` and
        `labels` are filled in here.
      run_dir: output directory; re-running with the same configuration resumes.
      verbose: Keras `fit` verbosity (default: progress bar on a terminal, else one line per
        epoch).

    Returns:
      The best validation metrics (what `metrics.json` holds) plus `run_dir`.
    """
    if experiment.task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {experiment.task!r}")
    t, d = experiment.train, experiment.data
    if t.freeze_epochs >= t.epochs and t.freeze_epochs:
        raise ValueError(f"--freeze-epochs ({t.freeze_epochs}) must be less than --epochs "
                         f"({t.epochs})")
    if d.truncation not in finetune_data.TRUNCATIONS:
        raise ValueError(f"--truncation must be one of {finetune_data.TRUNCATIONS}")
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
    experiment.encoder = encoder_config_of(encoder)
    experiment.tokenizer.vocabulary_size = tokenizer.vocabulary_size
    experiment.labels = list(labels)
    if d.max_sequence_length > experiment.encoder.max_sequence_length:
        raise ValueError(f"--seq-len {d.max_sequence_length} exceeds the encoder's "
                         f"{experiment.encoder.max_sequence_length} positions")
    claim_run_dir(experiment, run_dir)
    tokenization.save_vocabulary(tokenizer.vocab, os.path.join(run_dir, "vocab.txt"))
    readers.save_labels(labels, os.path.join(run_dir, "labels.txt"))

    model = build_classifier(experiment.task, encoder, len(labels), t.dropout)
    training.quiet_unused_pooler_warning()
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
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    phases = [("frozen", t.freeze_epochs, False), ("main", t.epochs, True)] if t.freeze_epochs \
        else [("main", t.epochs, True)]
    start = 0
    for name, end_epoch, encoder_trainable in phases:
        backup_dir = os.path.join(run_dir, "checkpoints", name)
        resumed = training.resumed_epoch(backup_dir)
        if resumed >= end_epoch:  # this phase finished in an earlier (interrupted) run
            start = end_epoch
            continue
        encoder.trainable = encoder_trainable  # takes effect at compile (CLARIFICATIONS)
        phase_steps = (end_epoch - start) * steps_per_epoch
        optimizer = training.build_optimizer(
            t.learning_rate, phase_steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon, layer_decay=t.layer_decay, num_layers=experiment.encoder.num_layers)
        _compile(model, optimizer, t.jit_compile)
        if resumed:
            print(f"Resuming {run_dir} ({name} phase) after epoch {resumed}.", flush=True)
        validation = ValidationCallback(evaluator, run_dir, monitor,
                                        start_epoch=max(resumed, start), verbose=verbose != 0)
        # Validation first: its metrics, history row and best weights are written before
        # BackupAndRestore marks the epoch done (a kill in between repeats the epoch instead
        # of losing its record), and TensorBoard / EarlyStopping see its val_* logs.
        callbacks = [
            validation,
            keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False),
            training.ReseedDropout(),
            keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        ]
        if t.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=f"val_{monitor}", mode="max", patience=t.early_stopping_patience))
        # BackupAndRestore sets `model._initial_epoch` when it restores, and Keras keeps it
        # across fit calls: clear it so the next phase starts where it should.
        model._initial_epoch = None
        model.fit(train_ds, epochs=end_epoch, initial_epoch=start, callbacks=callbacks,
                  verbose=verbose, shuffle=False)  # shuffled in tf.data, every epoch
        start = end_epoch

    with warnings.catch_warnings():
        # The weights file also holds the optimizer of the phase that wrote it; only the
        # model's weights matter here.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(os.path.join(run_dir, "best.weights.h5"))
    encoder.trainable = True
    model.save(os.path.join(run_dir, "model.keras"))
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
        ds = finetune_data.ner_dataset(train.texts, train.labels,
                                       window_stride=d.window_stride, **common)
        return ds.map(_mean_over_labelled_words, num_parallel_calls=tf.data.AUTOTUNE)
    return finetune_data.classification_dataset(train.texts, train.labels,
                                                truncation=d.truncation, **common)


# ----------------------------------------------------------------------------------------------
# evaluate()
# ----------------------------------------------------------------------------------------------
def load_finetuned(run_dir: str):
    """(experiment, model, tokenizer) of a finished fine-tuning run."""
    path = os.path.join(run_dir, "model.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir}: no model.keras (not a finished tfmask finetune "
                                "run?)")
    experiment = FinetuneExperiment.load(os.path.join(run_dir, "config.json"))
    import tfmask.heads  # noqa: F401  registers the classes .keras files name

    model = keras.saving.load_model(path)
    experiment.labels = readers.load_labels(os.path.join(run_dir, "labels.txt"))
    return experiment, model, runs.load_tokenizer(run_dir)


def evaluate(run_dir: str, data: str | None = None, tfds: str | None = None,
             tfds_data_dir: str | None = None, batch_size: int = 64,
             name: str | None = None) -> dict:
    """Scores a fine-tuned run on a file (read with the run's column options) or a TFDS split
    (`tfds="NAME:SPLIT"`, e.g. "conll2003:test"), writes `run_dir/evaluations/<name>.json`
    and returns the metrics."""
    experiment, model, tokenizer = load_finetuned(run_dir)
    if (data is None) == (tfds is None):
        raise ValueError("give exactly one of --data FILE or --tfds NAME:SPLIT")
    tfds_split = None
    if tfds:
        if ":" not in tfds:
            raise ValueError(f"--tfds expects NAME:SPLIT, e.g. conll2003:test; got {tfds!r}")
        experiment.data.tfds, tfds_split = tfds.rsplit(":", 1)
        experiment.data.tfds_data_dir = tfds_data_dir
    examples, _ = load_split(experiment, data or tfds_split, tfds_split=data is None,
                             labels=experiment.labels)
    d = experiment.data
    evaluator = Evaluator(experiment.task, examples, experiment.labels, tokenizer,
                          d.max_sequence_length, batch_size, d.window_stride, d.truncation)
    scores = evaluator(model)
    scores["data"] = examples.source
    name = name or (os.path.splitext(os.path.basename(data))[0] if data
                    else f"{d.tfds}_{tfds_split}")
    os.makedirs(os.path.join(run_dir, "evaluations"), exist_ok=True)
    _write_json(os.path.join(run_dir, "evaluations", f"{name.replace('/', '_')}.json"), scores)
    return scores
