"""Scoring a fine-tuned model on one split: the code the per-epoch validation callback and
`tfmask evaluate` share, so the numbers in `metrics.json` and an evaluation file agree.

NER predictions are merged from overlapping windows back to one tag per word, then scored on
entities exactly as seqeval's default mode (conlleval) scores them.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tfmask import runs
from tfmask.text import finetuning_data, tokenization
from tfmask.text.examples import Examples, load_split
from tfmask.train import metrics


def _weighted_cross_entropy(logits: np.ndarray, y: np.ndarray, weight: np.ndarray):
    """Sum over weighted positions of -log softmax(logits)[y], and the weight sum."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, y[..., None].astype(np.int64), -1)[..., 0]
    return float(-(picked * weight).sum()), float(weight.sum())


class Evaluator:
    """Scores a model on one split with the task's metrics.

    NER: windows (`finetuning_data.ner_windows`) -> logits -> `merge_windows` -> one tag per
    word -> `metrics.entity_scores` (seqeval's default mode). Sentiment and classify (one text
    or a pair): `accuracy`, `macro_f1`, `per_class`, `confusion_matrix`, and for two classes
    `positive_f1` (GLUE's F1 for MRPC and QQP). All add `loss` (mean cross-entropy over the
    labelled positions) and `examples`.
    """

    def __init__(self, task: str, examples: Examples, labels: list[str],
                 tokenizer: tokenization.WordPieceTokenizer, max_sequence_length: int,
                 batch_size: int = 64, window_stride: int | None = None,
                 truncation: str = "head"):
        self.task, self.examples, self.labels = task, examples, labels
        if task == "ner":
            self.dataset = finetuning_data.ner_windows(
                examples.texts, examples.label_ids, tokenizer, max_sequence_length, batch_size,
                window_stride=window_stride)
        else:
            self.dataset = finetuning_data.classification_dataset(
                examples.texts, examples.label_ids, tokenizer, max_sequence_length, batch_size,
                truncation=truncation, text_pairs=examples.text_pairs)
        # Tokenize once, not at every epoch.
        self.dataset = self.dataset.cache()
        self._forward = {}

    def _forward_fn(self, model):
        """One traced inference function per model (batches vary in length: [None, None])."""
        if id(model) not in self._forward:
            spec = {name: tf.TensorSpec([None, None], tf.int32)
                    for name in finetuning_data.INPUT_NAMES}
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
            per_word = finetuning_data.merge_windows(
                predictions, windows, weights, [len(w) for w in self.examples.texts])
            return [p.tolist() for p in per_word], mean_loss
        return np.concatenate(predictions).tolist(), mean_loss

    def __call__(self, model: keras.Model) -> dict:
        predicted, loss = self.predict(model)
        if self.task == "ner":
            true = [[self.labels[i] for i in s] for s in self.examples.label_ids]
            pred = [[self.labels[i] for i in s] for s in predicted]
            scores = metrics.entity_scores(true, pred)
        else:
            scores = metrics.classification_scores(self.examples.label_ids, predicted,
                                                   self.labels)
        scores["loss"] = loss
        scores["examples"] = len(self.examples)
        return scores


def evaluate(run_dir: str, data: str | None = None, tfds: str | None = None,
             tfds_data_dir: str | None = None, batch_size: int = 64,
             name: str | None = None) -> dict:
    """Scores a fine-tuned run on a file (read with the run's column options) or a TFDS split
    (`tfds="NAME:SPLIT"`, e.g. "conll2003:test"), writes `run_dir/evaluations/<name>.json`
    and returns the metrics."""
    experiment, model, tokenizer = runs.load_finetuned(run_dir)
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
    runs.write_json(os.path.join(run_dir, "evaluations", f"{name.replace('/', '_')}.json"), scores)
    return scores
