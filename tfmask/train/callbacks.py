"""Keras callbacks of a run: progress lines for logs and notebooks (`ProgressLogger`), the
pretraining history record (`history.json`, `history.png`), fine-tuning validation with
best-epoch keeping and its per-step training record (`train_steps.json`), the dropout reseeding
that exact resume needs, and the epoch a `BackupAndRestore` run resumes from."""

from __future__ import annotations

import copy
import math
import os
import sys
import time
import warnings

import keras
import numpy as np

from tfmask import runs
from tfmask.train import checkpoints, plots



def resumed_epoch(backup_dir: str) -> int:
    """The epoch (= checkpoint interval) `checkpoints.Checkpoints` will resume from: its
    newest intact checkpoint's (a damaged newer one is passed over with a warning); 0 if
    none."""
    checkpoint = checkpoints.latest(backup_dir)
    return checkpoint.epoch if checkpoint else 0


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------
class ProgressLogger(keras.callbacks.Callback):
    """Progress as plain lines, for output that is not a terminal (a log file, CI, a notebook).

    A line every `every_steps` steps or every `every_seconds` seconds, whichever comes first,
    but never two within `min_seconds` (so a fast epoch does not flood the log), and one at
    every epoch end with the epoch's logs (validation included) and its duration:

        epoch 1/3  step 44/439  loss 0.8123  accuracy 0.7520  lr 4.40e-05  3.21 steps/s  ETA 2m03s
        epoch 1/3  step 439/439  loss 0.4123  accuracy 0.8812  val_loss 0.3012 ... done in 2m21s

    With `epochs_are_intervals` (pretraining, where a Keras epoch is one checkpoint interval)
    lines start `step 300/1000` and add tokens/s: steps count over the run, `every_fraction`
    is a fraction of the run and the ETA is the run's; otherwise they count within the epoch
    and the ETA is the epoch's. Rates leave out each epoch's first step (graph tracing); the
    ETA counts training steps, not evaluation.

    Args:
      every_steps: steps between lines; default `every_fraction` of an epoch (of the run with
        `epochs_are_intervals`), rounded up.
      every_seconds: seconds between lines (None: by steps only).
      every_fraction: see `every_steps`.
      min_seconds: the least time between two progress lines (epoch-end lines always print).
      steps_per_epoch: steps in an epoch when Keras does not know them (a dataset of unknown
        cardinality); shown as "~N" until the first epoch has counted them.
      tokens_per_step: B x L; adds tokens/s to the lines.
      epochs_are_intervals: see above.

    Example:
      `finetune(experiment, run_dir, verbose=ProgressLogger(every_steps=100))`
    """

    def __init__(self, every_steps: int | None = None, every_seconds: float | None = 30.0,
                 every_fraction: float = 0.1, min_seconds: float = 2.0,
                 steps_per_epoch: int | None = None, tokens_per_step: int | None = None,
                 epochs_are_intervals: bool = False):
        super().__init__()
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.every_fraction, self.min_seconds = every_fraction, min_seconds
        self.steps_per_epoch, self.tokens_per_step = steps_per_epoch, tokens_per_step
        self.epochs_are_intervals = epochs_are_intervals
        self._counted_steps = None  # steps of an epoch, as counted by a finished epoch

    def for_run(self, **context) -> "ProgressLogger":
        """A copy with `steps_per_epoch`, `tokens_per_step`, `epochs_are_intervals` filled in
        where this logger leaves them unset (the caller's logger is not changed)."""
        logger = copy.copy(self)
        for key, value in context.items():
            if getattr(logger, key) in (None, False):
                setattr(logger, key, value)
        return logger

    # --- what the run knows -------------------------------------------------------------
    def _epoch_steps(self) -> tuple[int | None, bool]:
        """(steps in an epoch, whether exact)."""
        known = (self.params or {}).get("steps") or self._counted_steps
        return (known, True) if known else (self.steps_per_epoch, False)

    def _interval(self) -> int | None:
        if self.every_steps:
            return self.every_steps
        steps, _ = self._epoch_steps()
        if not steps:
            return None
        if self.epochs_are_intervals:
            steps *= self.params["epochs"]
        return max(1, math.ceil(self.every_fraction * steps))

    # --- Keras hooks --------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = self._last_line = time.perf_counter()
        self._first_step_end = None
        self._last_line_step = self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self._step = batch + 1
        if self._first_step_end is None:  # it traced the graph: no rate to show yet
            self._first_step_end = (now, self._step)
            return
        steps, exact = self._epoch_steps()
        if exact and self._step >= steps:
            return  # the epoch-end line follows
        interval = self._interval()
        due = ((interval and self._step - self._last_line_step >= interval)
               or (self.every_seconds is not None and now - self._last_line >= self.every_seconds))
        if due and now - self._last_line >= self.min_seconds:
            print(self._line(logs or {}, now), flush=True)
            self._last_line, self._last_line_step = now, self._step

    def on_epoch_end(self, epoch, logs=None):
        if self._step:
            self._counted_steps = self._counted_steps or self._step
        now = time.perf_counter()
        print(f"{self._position()}  {_format_logs(logs or {})}  lr {self._learning_rate():.2e}"
              f"  done in {_duration(now - self._epoch_start)}", flush=True)

    # --- the line -----------------------------------------------------------------------
    def _run_step(self) -> int:
        if not self.epochs_are_intervals:
            return self._step
        steps, _ = self._epoch_steps()
        return self._epoch * (steps or 0) + self._step

    def _position(self) -> str:
        steps, exact = self._epoch_steps()
        epochs = self.params["epochs"]
        if self.epochs_are_intervals:
            total = f"{'' if exact else '~'}{steps * epochs}" if steps else "?"
            return f"step {self._run_step()}/{total}"
        total = f"{'' if exact else '~'}{steps}" if steps else "?"
        return f"epoch {self._epoch + 1}/{epochs}  step {self._step}/{total}"

    def _rate(self, now: float) -> float:
        """Steps per second since the epoch's first step ended (that step traces the graph)."""
        start, step = self._first_step_end
        if self._step > step and now > start:
            return (self._step - step) / (now - start)
        return self._step / max(now - self._epoch_start, 1e-9)

    def _line(self, logs: dict, now: float) -> str:
        rate = self._rate(now)
        parts = [self._position(), _format_logs(logs), f"lr {self._learning_rate():.2e}",
                 f"{rate:.2f} steps/s"]
        if self.tokens_per_step:
            parts.append(f"{rate * self.tokens_per_step:,.0f} tokens/s")
        steps, _ = self._epoch_steps()
        if steps:
            left = (steps * self.params["epochs"] - self._run_step() if self.epochs_are_intervals
                    else steps - self._step)
            parts.append(f"ETA {_duration(max(left, 0) / rate)}")
        return "  ".join(parts)

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def _format_logs(logs: dict) -> str:
    """`loss 0.4123  accuracy 0.8812  val_loss 0.3012  val_accuracy ...`: training values
    first, each group's loss first."""
    items = sorted(((k, v) for k, v in logs.items() if isinstance(v, (int, float, np.number))),
                   key=lambda kv: (kv[0].startswith("val_"), kv[0] not in ("loss", "val_loss")))
    return "  ".join(f"{k} {float(v):.4f}" for k, v in items)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def progress_callbacks(verbose, **context) -> tuple[int, list]:
    """(`fit` verbosity, callbacks) for the `verbose` argument of `pretrain` / `finetune`.

    `verbose`: None, a live Keras progress bar when stdout is a terminal and `ProgressLogger`
    lines otherwise (log files, CI, notebooks, where stdout is not a terminal either); 0,
    silent; 1, the bar; 2, the lines; or a `ProgressLogger`, lines at its interval. `context`
    is what the run knows (`steps_per_epoch`, `tokens_per_step`, `epochs_are_intervals`).
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if isinstance(verbose, ProgressLogger):
        return 0, [verbose.for_run(**context)]
    if verbose == 2:
        return 0, [ProgressLogger(**context)]
    if verbose in (0, 1):
        return verbose, []
    raise ValueError(f"verbose must be None, 0, 1, 2 or a ProgressLogger, got {verbose!r}")


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
            self.records = [r for r in runs.read_json(self.path) if r["step"] <= start_step]
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


TRAIN_STEPS = "train_steps.json"


def record_interval(steps_per_epoch: int | None, points_per_epoch: int = 50) -> int:
    """Steps between two `StepRecorder` records: about `points_per_epoch` a epoch."""
    return max(1, math.ceil((steps_per_epoch or 1) / points_per_epoch))


class StepRecorder(keras.callbacks.Callback):
    """Writes `train_steps.json`: the training loss every `every` steps, for curves finer
    than one point an epoch.

    Each record: `step` (counted over the run), `epoch` (1-based), `loss` (the mean of the
    batch losses since the previous record, derived from Keras's running epoch mean, which
    weighs batches by their size: exact when the batches are the same size) and
    `learning_rate` (the rate of the next step). An epoch's last record is at its last step.
    The file is written at every epoch end; on resume the records of the restored epochs
    are kept.

    Args:
      run_dir: where `train_steps.json` goes.
      every: steps between records.
      start_epoch: the epoch training resumes after (0: a fresh run).
      steps_per_epoch: for the step count of a resumed run whose file has no record.
    """

    def __init__(self, run_dir: str, every: int, start_epoch: int = 0,
                 steps_per_epoch: int = 0):
        super().__init__()
        self.path = os.path.join(run_dir, TRAIN_STEPS)
        self.every = every
        self.records = []
        if os.path.exists(self.path):
            self.records = [r for r in runs.read_json(self.path) if r["epoch"] <= start_epoch]
        self._base = self.records[-1]["step"] if self.records else start_epoch * steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._mark = (0, 0.0)  # (steps of the epoch, running mean loss) at the last record
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        self._last = (batch + 1, float((logs or {}).get("loss", np.nan)))
        if self._last[0] - self._mark[0] >= self.every:
            self._record()

    def on_epoch_end(self, epoch, logs=None):
        if self._last and self._last[0] > self._mark[0]:
            self._record()
        self._base += self._mark[0]
        runs.write_json(self.path, self.records)

    def _record(self):
        (step, mean), (mark_step, mark_mean) = self._last, self._mark
        self.records.append({
            "step": self._base + step, "epoch": self._epoch + 1,
            "loss": (step * mean - mark_step * mark_mean) / (step - mark_step),
            "learning_rate": float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))})
        self._mark = self._last


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
            self.records = [r for r in runs.read_json(self.history_path)
                            if r["epoch"] <= start_epoch]
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
        if "first_step_seconds" in logs:  # from finetuning.FirstStepTimer: history only
            record["first_step_seconds"] = float(logs.pop("first_step_seconds"))
        for key, value in scores.items():
            if isinstance(value, (int, float)) and key != "examples":
                record[f"val_{key}"] = float(value)
                logs[f"val_{key}"] = float(value)  # seen by the callbacks that follow
        self.records = [r for r in self.records if r["epoch"] < epoch + 1] + [record]
        runs.write_json(self.history_path, self.records)
        improved = scores[self.monitor] > self.best
        if improved:
            self.best = scores[self.monitor]
            runs.save_weights(self.model, os.path.join(self.run_dir, "best.weights.h5"))
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
            steps_path = os.path.join(self.run_dir, TRAIN_STEPS)
            steps = runs.read_json(steps_path) if os.path.exists(steps_path) else None
            plots.plot_finetune_history(self.records, os.path.join(self.run_dir, "history.png"),
                                        self.monitor, steps=steps)


def _plot_best(scores: dict, labels: list[str], run_dir: str) -> None:
    if "per_type" in scores:
        plots.plot_per_type_f1(scores["per_type"], os.path.join(run_dir, "per_type_f1.png"))
    if "confusion_matrix" in scores:
        plots.plot_confusion_matrix(scores["confusion_matrix"], labels,
                                    os.path.join(run_dir, "confusion_matrix.png"))
