"""Keras callbacks of a run: the pretraining history record (`history.json`, `history.png`),
fine-tuning validation with best-epoch keeping, the dropout reseeding that exact resume needs,
and the epoch a `BackupAndRestore` run resumes from."""

from __future__ import annotations

import json
import os
import time
import warnings

import keras
import numpy as np

from tfmask import runs
from tfmask.train import plots

_BACKUP_METADATA = "training_metadata.json"

def resumed_epoch(backup_dir: str) -> int:
    """The epoch (= checkpoint interval) `BackupAndRestore` will resume from; 0 if none."""
    path = os.path.join(backup_dir, _BACKUP_METADATA)
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        return int(json.load(fh)["epoch"])


class HistoryRecorder(keras.callbacks.Callback):
    """Writes `history.json` (one record per checkpoint interval) and `history.png`.

    Records: `step`, `loss`, `masked_accuracy`, `tokens_per_second` (B x L positions per
    second of training steps, evaluation excluded), `learning_rate`, `wall_time`, and with
    evaluation data `eval_loss`, `eval_masked_accuracy`. On resume, records of steps beyond the
    restored checkpoint are dropped and the rest kept.
    """

    def __init__(self, run_dir: str, steps_per_epoch: int, tokens_per_step: int,
                 start_step: int = 0):
        super().__init__()
        self.path = os.path.join(run_dir, "history.json")
        self.plot_path = os.path.join(run_dir, "history.png")
        self.steps_per_epoch = steps_per_epoch
        self.tokens_per_step = tokens_per_step
        self.records = []
        if os.path.exists(self.path):
            with open(self.path) as fh:
                self.records = [r for r in json.load(fh) if r["step"] <= start_step]
        self._start = self._last_batch_end = None
        self._run_start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        elapsed = max((self._last_batch_end or time.perf_counter()) - self._start, 1e-9)
        record = {
            "step": (epoch + 1) * self.steps_per_epoch,
            "loss": float(logs["loss"]),
            "masked_accuracy": float(logs["masked_accuracy"]),
            "tokens_per_second": self.steps_per_epoch * self.tokens_per_step / elapsed,
            "learning_rate": float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate)),
            "wall_time": time.time() - self._run_start,
        }
        if "val_loss" in logs:
            record["eval_loss"] = float(logs["val_loss"])
            record["eval_masked_accuracy"] = float(logs["val_masked_accuracy"])
        self.records.append(record)
        runs.write_json(self.path, self.records)
        plots.plot_history(self.records, self.plot_path)


class ReseedDropout(keras.callbacks.Callback):
    """Sets every dropout RNG state from the epoch number at the start of each epoch.

    Keras's weight checkpoints do not hold the `SeedGenerator` states that drive dropout, so a
    run restored by `BackupAndRestore` would draw different dropout masks than the run that
    was interrupted. Deriving the states from (initial seed, epoch) makes a resumed run draw
    exactly the masks an uninterrupted one draws.
    """

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model._flatten_layers(include_self=True):
            for generator in getattr(layer, "_seed_generators", ()):
                state = keras.ops.convert_to_numpy(generator.state.value)
                # state[0] is the generator's seed (fixed by the run seed); state[1] counts
                # draws. Each epoch gets its own block of 2**20 draws.
                state[1] = epoch << 20
                generator.state.assign(state)


def quiet_unused_pooler_warning():
    """MLM pretraining (no next-sentence task) leaves the pooler without gradients: expected."""
    warnings.filterwarnings("ignore", message="Gradients do not exist for variables.*pooler")


class ValidationCallback(keras.callbacks.Callback):
    """At every epoch end: scores the validation set, adds `val_*` to the logs (so
    EarlyStopping and TensorBoard see them), appends to `history.json`, plots, and keeps the
    best epoch's weights (`best.weights.h5`) and metrics (`metrics.json`)."""

    def __init__(self, evaluator, run_dir: str, monitor: str, start_epoch: int = 0,
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
        runs.write_json(self.history_path, self.records)
        improved = scores[self.monitor] > self.best
        if improved:
            self.best = scores[self.monitor]
            self.model.save_weights(os.path.join(self.run_dir, "best.weights.h5"))
            runs.write_json(os.path.join(self.run_dir, "metrics.json"),
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
