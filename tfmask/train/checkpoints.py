"""Resume checkpoints that survive a kill or a damaged file, and the stop on a loss that is
not finite.

`Checkpoints` is `keras.callbacks.BackupAndRestore` (same arguments, same
`training_metadata.json` with the `epoch` to resume from, so `callbacks.resumed_epoch` and
`distribute.SyncFromChief` read it as before) with safer files. Keras's own writes its one
`latest.weights.h5` in place: a kill or a full disk during the write leaves a truncated file,
and the run stops with an HDF5 error. Here each checkpoint interval (one Keras epoch) gets its
own file, the last two are kept, and every file is written under a temporary name, flushed to
disk and renamed before the metadata (written the same way) names it:

    checkpoints/
      epoch-000003.weights.h5    weights + optimizer state after interval 3
      epoch-000002.weights.h5    the one before, kept until the next one is safely written
      training_metadata.json     {"epoch": 3, "batch": 0, "checkpoints": [
                                    {"epoch": 3, "file": "epoch-000003.weights.h5",
                                     "bytes": ..., "sha256": ...}, {"epoch": 2, ...}]}

On a restart `latest` checks the newest checkpoint against its size and SHA-256; a damaged
one (truncated, overwritten, missing) is passed over with a warning that names it and the
one used instead, and with no intact checkpoint left `DamagedCheckpointError` names the
damaged file. A folder written by an older tfmask (Keras's `latest.weights.h5`) is read too.

`StopOnNonFiniteLoss` stops training at the first step whose loss is NaN or infinite, naming
the step, its learning rate and what to try (Keras's `TerminateOnNaN` stops without saying
why).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re

import keras

from tfmask import runs

METADATA = "training_metadata.json"
#: How many checkpoints a folder keeps: the newest, and the one to fall back on.
KEEP = 2
_FILE = re.compile(r"epoch-(\d+)\.weights\.h5")
_LEGACY = "latest.weights.h5"  # Keras's BackupAndRestore, as tfmask 0.1 wrote it
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: (path, size, mtime) of files whose checksum matched, so a restart checks each once.
_VERIFIED: set[tuple[str, int, int]] = set()


class DamagedCheckpointError(ValueError):
    """No intact checkpoint is left to resume from; the message names the damaged file."""


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite; the message says at which step and what to
    try."""


@dataclasses.dataclass
class Checkpoint:
    """One checkpoint: the epoch (interval) it ends, its file, and what the metadata recorded
    of it (None when unknown: a folder written by an older version)."""

    epoch: int
    path: str
    bytes: int | None = None
    sha256: str | None = None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def problem(checkpoint: Checkpoint) -> str | None:
    """What is wrong with a checkpoint's file (None: it is intact)."""
    path = checkpoint.path
    if not os.path.exists(path):
        return "missing"
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return None
    if checkpoint.bytes is not None and stat.st_size != checkpoint.bytes:
        return (f"truncated: {stat.st_size:,} bytes, {checkpoint.bytes:,} when it was written"
                if stat.st_size < checkpoint.bytes else
                f"{stat.st_size:,} bytes, {checkpoint.bytes:,} when it was written")
    if checkpoint.sha256 is not None:
        if _sha256(path) != checkpoint.sha256:
            return "its content changed since it was written (SHA-256 differs)"
    else:  # no checksum recorded: at least a complete HDF5 file
        import h5py

        with open(path, "rb") as fh:
            if fh.read(8) != _HDF5_SIGNATURE:
                return "not an HDF5 weights file"
        try:
            h5py.File(path, "r").close()
        except OSError as e:
            return f"unreadable ({str(e).splitlines()[0]})"
    _VERIFIED.add(key)
    return None


def _metadata(backup_dir: str) -> tuple[dict | None, str]:
    """The metadata (None if absent) and, when it is damaged, why."""
    path = os.path.join(backup_dir, METADATA)
    if not os.path.exists(path):
        return None, ""
    try:
        metadata = runs.read_json(path)
        int(metadata["epoch"])
        return metadata, ""
    except runs.RunFileError as e:
        return None, str(e)
    except (KeyError, TypeError, ValueError) as e:  # JSON, but not what Checkpoints writes
        return None, f"{path}: damaged ({type(e).__name__}: {e})"


def candidates(backup_dir: str) -> tuple[list[Checkpoint], str]:
    """The checkpoints of a folder, newest first, and a note when its metadata is damaged
    (the checkpoint files are then taken by their names)."""
    if not os.path.isdir(backup_dir):
        return [], ""
    metadata, note = _metadata(backup_dir)
    if metadata is not None and "checkpoints" in metadata:
        return [Checkpoint(int(c["epoch"]), os.path.join(backup_dir, c["file"]),
                           c.get("bytes"), c.get("sha256"))
                for c in metadata["checkpoints"]], ""
    if metadata is not None:  # Keras's layout (one file, and a .bkp copy when asked for)
        found = [Checkpoint(int(metadata["epoch"]), os.path.join(backup_dir, _LEGACY))]
        backup = os.path.join(backup_dir, METADATA + ".bkp")
        if os.path.exists(backup):
            try:
                found.append(Checkpoint(int(runs.read_json(backup)["epoch"]),
                                        os.path.join(backup_dir, _LEGACY + ".bkp")))
            except (ValueError, KeyError, TypeError):
                pass
        return found, ""
    named = sorted(((int(m.group(1)), name) for name in os.listdir(backup_dir)
                    if (m := _FILE.fullmatch(name))), reverse=True)
    return [Checkpoint(epoch, os.path.join(backup_dir, name)) for epoch, name in named], note


def latest(backup_dir: str, report=print) -> Checkpoint | None:
    """The newest intact checkpoint of `backup_dir` (None if it has none).

    A damaged newer one is passed over, and `report` (None: silent) gets a warning that
    names it and the one used instead.

    Raises:
      DamagedCheckpointError: checkpoints exist but none is intact.
    """
    found, note = candidates(backup_dir)
    if note and report:
        report(f"Warning: {note}; looking for the newest intact checkpoint file instead.")
    damaged = []
    for checkpoint in found:
        why = problem(checkpoint)
        if why is None:
            if damaged and report:
                report("Warning: " + "; ".join(f"{c.path} (epoch {c.epoch}) is damaged ({w})"
                                               for c, w in damaged)
                       + f": resuming from {checkpoint.path} (epoch {checkpoint.epoch}).")
            return checkpoint
        damaged.append((checkpoint, why))
    if damaged:
        checkpoint, why = damaged[0]
        older = (f"; the previous one, {damaged[1][0].path}, is damaged too ({damaged[1][1]})"
                 if len(damaged) > 1 else "; no earlier checkpoint is kept")
        raise DamagedCheckpointError(
            f"{checkpoint.path}: the checkpoint to resume from is damaged ({why}){older}. "
            f"Remove {backup_dir} to train this run again from its start, or choose a new "
            "--out")
    if note:
        raise DamagedCheckpointError(f"{note}, and no checkpoint file is left beside it. "
                                     f"Remove {backup_dir} to train this run again from its "
                                     "start, or choose a new --out")
    return None


class Checkpoints(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that writes each checkpoint atomically, keeps the last `KEEP`, and
    resumes from the newest intact one (see the module docstring). Arguments as Keras's; only
    `save_freq="epoch"` is supported (one epoch is one checkpoint interval)."""

    def __init__(self, backup_dir: str, save_freq="epoch", delete_checkpoint: bool = True):
        if save_freq != "epoch":
            raise ValueError(f"Checkpoints saves at epoch ends only, got save_freq={save_freq!r}")
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)

    def on_train_begin(self, logs=None):
        checkpoint = latest(self.backup_dir, report=None)  # warned when the run started
        if checkpoint is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(checkpoint.path)
        except Exception as e:  # noqa: BLE001  h5py and Keras errors alike
            raise DamagedCheckpointError(
                f"{checkpoint.path}: {runs.damage(checkpoint.path, e)}; remove "
                f"{self.backup_dir} to train this run again from its start") from e
        self.model._initial_epoch = checkpoint.epoch

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        epoch = self._current_epoch
        name = f"epoch-{epoch:06d}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        optimizer = self.model.optimizer
        expected = runs.variable_bytes(list(self.model.weights) + list(
            optimizer.variables if optimizer is not None else []))
        with runs.weights_file(path, expected) as tmp:
            self.model.save_weights(tmp, overwrite=True)
        stat = os.stat(path)
        entry = {"epoch": epoch, "file": name, "bytes": stat.st_size, "sha256": _sha256(path)}
        _VERIFIED.add((path, stat.st_size, stat.st_mtime_ns))
        older = [dataclasses.asdict(c) for c in candidates(self.backup_dir)[0]
                 if c.epoch < epoch and problem(c) is None][:KEEP - 1]
        kept = [entry] + [{"epoch": c["epoch"], "file": os.path.basename(c["path"]),
                           "bytes": c["bytes"], "sha256": c["sha256"]} for c in older]
        runs.write_json(os.path.join(self.backup_dir, METADATA),
                        {"epoch": epoch, "batch": 0, "checkpoints": kept})
        keep = {c["file"] for c in kept} | {METADATA}
        for leftover in os.listdir(self.backup_dir):
            if leftover not in keep and (_FILE.fullmatch(leftover) or leftover.startswith(
                    (".tmp-", _LEGACY, METADATA + ".bkp"))):
                os.remove(os.path.join(self.backup_dir, leftover))


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first training step whose loss is NaN or infinite.

    The message names the step (counted over the run), the learning rate of that step, the
    last checkpoint (which stays intact: it was written before) and what to try.

    Args:
      steps_per_epoch: steps of one Keras epoch, to count steps over the run.
      advice: what to try, for the message (the flags of the command).
    """

    def __init__(self, steps_per_epoch: int | None, advice: str = ""):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.advice = advice or ("try a lower learning rate, a longer warm-up, a smaller "
                                 "clipnorm, or float32 instead of mixed precision")
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(keras.ops.convert_to_numpy(loss))
        if math.isfinite(loss):
            return
        optimizer = self.model.optimizer
        iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
        schedule = optimizer._learning_rate
        # The rate of the step that just ran: the schedule one iteration back.
        rate = (schedule(max(iterations - 1, 0)) if callable(schedule) else schedule)
        rate = float(keras.ops.convert_to_numpy(rate))
        step = (self._epoch * self.steps_per_epoch + batch + 1 if self.steps_per_epoch
                else batch + 1)
        where = (f"step {step}" if self.steps_per_epoch
                 else f"epoch {self._epoch + 1}, step {batch + 1}")
        raise NonFiniteLossError(
            f"the training loss became {loss} at {where} (learning rate {rate:.3g}); training "
            f"stopped, the checkpoints written before are intact. {self.advice}")
