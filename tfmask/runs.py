"""Run directories: every file a run writes and every loader that reads one back.

`tfmask pretrain`, `tfmask import` and `tfmask finetune` each write a directory that later
steps take as `--init RUN` (fine-tuning) or `RUN` (export, evaluate):

    config.json      the resolved configuration (`claim_run_dir`); an import run holds its
                     `encoder` and `tokenizer` sections and `source`
    vocab.txt        the WordPiece vocabulary (`save_vocabulary`)
    encoder.keras    the `BertEncoder` (pretrain, import)
    masked_lm.keras  encoder + MLM head (pretrain; an import whose source has the head)
    labels.txt       fine-tuning: label names, index = id (`save_labels`)
    model.keras      fine-tuning: the best `TokenClassifier` / `SequenceClassifier`
    best.weights.h5  fine-tuning: the best epoch's weights
    checkpoints/     `BackupAndRestore` state (weights + optimizer) of an unfinished run
    *.json           history, metrics and evaluations, written atomically (`write_json`)

The `.keras` and `.weights.h5` files hold the model's weights only, never an optimizer
(`save_model`, `save_weights`; loaders pass `compile=False`, so a file from an older version
that holds one loads, and exports, as weights only). The optimizer state lives only in
`checkpoints/`, which exists while a run is unfinished: a finished run (its `FINAL_FILES` all
present, written after the last step) has it removed (`prune_checkpoints`); nothing resumes a
finished run, and `--init RUN` reads only `encoder.keras`, `vocab.txt` and `config.json`.

A re-run with the same configuration resumes an unfinished run and returns a finished one's
results without training; a different configuration is refused (`RunConflictError`) before
anything is overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import time
import zipfile

import numpy as np

from tfmask.config import EncoderConfig, FinetuneExperiment, TokenizerConfig
from tfmask.text import readers
from tfmask.text.text_files import atomic_path, atomic_write

# Keras and the tokenizer (TensorFlow) are imported by the functions that use them: reading
# a run's JSON files (`tfmask show`) loads no TensorFlow.

CONFIG, VOCAB, LABELS = "config.json", "vocab.txt", "labels.txt"
CHECKPOINTS = "checkpoints"
#: The files a run writes after its last step, last of all: all present = the run finished.
FINAL_FILES = {"pretrain": ("encoder.keras", "masked_lm.keras"), "finetune": ("model.keras",)}


class RunConflictError(ValueError):
    """The run directory belongs to a run with a different configuration."""


class RunFileError(ValueError):
    """A run's file is damaged or unreadable; the message names it and says what to do."""


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------
def claim_run_dir(experiment, run_dir: str) -> None:
    """Writes `run_dir/config.json`, or checks that the one there is `experiment` (a re-run
    resumes); a different configuration raises `RunConflictError` listing the differences."""
    path = os.path.join(run_dir, CONFIG)
    if os.path.exists(path):
        held = read_json(path)
        try:
            if not isinstance(held, dict):
                raise TypeError(f"a JSON {type(held).__name__}, not an object")
            held = type(experiment).from_dict(held)
        except (TypeError, AttributeError, ValueError) as e:  # JSON, but not a configuration
            raise RunFileError(f"{path}: not a tfmask configuration ({e}); choose a new "
                               "--out, or remove the file to start this run again") from None
        differences = diff_dicts(held.to_dict(), experiment.to_dict())
        if differences:
            raise RunConflictError(
                f"{run_dir} holds a run with a different configuration ("
                + "; ".join(differences) + "). Re-run with the same options to resume, or "
                "choose a new --out.")
    write_json(path, experiment.to_dict(), indent=2)


def diff_dicts(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`section.field: old -> new` for every leaf that differs (for run-directory conflicts)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_dicts(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def write_json(path: str, value, indent: int = 1) -> None:
    """Writes `value` as JSON through a temporary file flushed to disk, so a kill or a full
    disk never leaves half a file (`text_files.atomic_write`)."""
    atomic_write(path, json.dumps(value, indent=indent))


def read_json(path: str):
    """A JSON file of a run; a damaged one raises `RunFileError` naming it and the line."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except UnicodeDecodeError as e:
        raise RunFileError(f"{path}: damaged (not UTF-8 text: {e.reason} at byte "
                           f"{e.start})") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}:{e.lineno}: damaged (invalid JSON: {e.msg}, column "
                           f"{e.colno}); tfmask writes it whole or not at all, so something "
                           "else changed it: restore it, or remove it") from None


def _optimizer_free(model):
    """`model`, or an uncompiled copy with its config and weights when it is compiled.

    Keras writes a compiled model's optimizer variables (Adam's two moments: twice the
    weights) and compile config into `.keras` files; an uncompiled copy has neither."""
    import keras

    if getattr(model, "optimizer", None) is None and not getattr(model, "compiled", False):
        return model
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # else the copy is compiled as well
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def save_model(model, path: str) -> None:
    """Writes `model` as a `.keras` file (config + weights, no optimizer, no compile config)
    through a temporary file, so a kill never leaves half a file."""
    with weights_file(path, variable_bytes(model.weights)) as tmp:
        _optimizer_free(model).save(tmp)


def _optimizer_of(model) -> list:
    """`objects_to_skip` for Keras's weight files: the model's optimizer, if it has one."""
    optimizer = getattr(model, "optimizer", None)
    return [optimizer] if optimizer is not None else []


def save_weights(model, path: str) -> None:
    """Writes `model`'s weights (not its optimizer's) to a `.weights.h5` file, atomically."""
    import keras

    with weights_file(path, variable_bytes(model.weights)) as tmp:
        keras.saving.save_weights(model, tmp, objects_to_skip=_optimizer_of(model))


def variable_bytes(variables) -> int:
    """The bytes `variables` take (what a weights file of them holds, overhead aside)."""
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


@contextlib.contextmanager
def weights_file(path: str, expected_bytes: int):
    """`atomic_path` for an HDF5 or `.keras` file of about `expected_bytes`, that first checks
    the disk has room for it (h5py, when a write fails for lack of space, prints errors
    while its objects are collected). A write that fails anyway for lack of space becomes one
    `OSError` naming `path`."""
    directory = os.path.dirname(path) or "."
    needed = int(expected_bytes * 1.1) + (1 << 20)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"no space left on the device for {path} (about "
                      f"{needed / 1e6:,.1f} MB needed, {free / 1e6:,.1f} MB free); the files "
                      "written before are intact: free some space and re-run the same command")
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except (OSError, RuntimeError) as e:
        if errno.ENOSPC != getattr(e, "errno", None) and "No space left" not in str(e):
            raise
        raise OSError(errno.ENOSPC, f"no space left on the device while writing {path}; the "
                      "files written before are intact: free some space and re-run the same "
                      "command") from None


def load_weights(model, path: str) -> None:
    """Loads a `.weights.h5` file into `model`'s weights, leaving its optimizer alone (and
    ignoring the optimizer a file from an older version holds); a damaged file raises
    `RunFileError` naming it."""
    import keras

    try:
        keras.saving.load_weights(model, path, objects_to_skip=_optimizer_of(model))
    except Exception as e:  # noqa: BLE001  h5py, Keras and NumPy errors alike
        raise RunFileError(f"{path}: {damage(path, e)}") from e


def load_keras(path: str):
    """A `.keras` file, not compiled, in Keras's safe mode (no Python code stored in the file
    runs: a `Lambda` layer holding one is refused); a damaged file raises `RunFileError`."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001  zip, h5py, JSON and Keras errors alike
        raise RunFileError(f"{path}: {damage(path, e)}") from e


def damage(path: str, error: Exception) -> str:
    """What is wrong with a `.keras` or `.h5` file that failed to load, in a few words."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            return (f"damaged: not a complete .keras file ({size:,} bytes; a .keras file is a "
                    "zip archive: this one is truncated or overwritten)")
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            broken = f"? ({e})"
        if broken:
            return f"damaged: its member {broken} fails its checksum"
    elif path.endswith(".h5"):
        with open(path, "rb") as fh:
            signature = fh.read(8)
        if signature != b"\x89HDF\r\n\x1a\n":
            return f"damaged: not an HDF5 weights file ({size:,} bytes)"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if "safe_mode" in str(error):
        return ("refused: it holds Python code (e.g. a Lambda layer's function), which tfmask "
                "never runs (Keras safe mode); tfmask's own files hold none")
    if "truncated file" in reason:
        return f"damaged: truncated ({reason})"
    return f"cannot be loaded ({type(error).__name__}: {reason})"


def is_finished(run_dir: str, command: str) -> bool:
    """Whether `run_dir` holds a finished `command` ("pretrain", "finetune") run."""
    return all(os.path.exists(os.path.join(run_dir, name)) for name in FINAL_FILES[command])


def prune_checkpoints(run_dir: str) -> None:
    """Removes a finished run's `checkpoints/` (the only optimizer state it held)."""
    shutil.rmtree(os.path.join(run_dir, CHECKPOINTS), ignore_errors=True)


ENVIRONMENT = "environment.json"


def environment() -> dict:
    """The software a run uses: package versions, Python, the platform, and the git revision
    of tfmask's source when it runs from a git checkout (`git_dirty`: with local changes)."""
    import platform
    from importlib import metadata

    import numpy as np
    import tensorflow as tf
    import keras
    import tensorflow_text

    import tfmask

    source = os.path.dirname(os.path.dirname(os.path.abspath(tfmask.__file__)))
    revision = dirty = None
    if os.path.exists(os.path.join(source, ".git")):
        try:
            git = ["git", "-C", source]
            head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10)
            status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            if head.returncode == 0:
                revision, dirty = head.stdout.strip(), bool(status.stdout.strip())
        except (OSError, subprocess.SubprocessError):  # no git, or it hangs
            pass
    return {"packages": {"tfmask": tfmask.__version__, "tensorflow": tf.__version__,
                         "tensorflow-text": tensorflow_text.__version__,
                         "keras": keras.__version__, "keras-hub": _version(metadata, "keras-hub"),
                         "numpy": np.__version__},
            "python": platform.python_version(), "platform": platform.platform(),
            "git_revision": revision, "git_dirty": dirty}


def _version(metadata, package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def record_environment(run_dir: str, **context) -> dict:
    """Appends this process's `environment()` (with `context`, e.g. the step it starts from,
    and the time) to `run_dir/environment.json`, one record each time the run starts or
    resumes; says so when the packages differ from the run's first record. Kept apart from
    `config.json`, so a resumed run under other versions is still the same configuration."""
    path = os.path.join(run_dir, ENVIRONMENT)
    records = read_json(path) if os.path.exists(path) else []
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **context, **environment()}
    if records and records[0].get("packages") != record["packages"]:
        first = records[0].get("packages") or {}
        changed = [f"{k} {first.get(k)} -> {v}" for k, v in record["packages"].items()
                   if first.get(k) != v]
        print(f"Note: {run_dir} started with other package versions ({', '.join(changed)}); "
              f"both are recorded in {ENVIRONMENT}.", flush=True)
    write_json(path, records + [record], indent=1)
    return record


def write_vocabulary(run_dir: str, vocab: list[str]) -> None:
    """`vocab.txt`, one token a line (the casing lives in `config.json`'s tokenizer section)."""
    from tfmask.text.tokenization import save_vocabulary

    save_vocabulary(vocab, os.path.join(run_dir, VOCAB))


def write_labels(run_dir: str, labels: list[str]) -> None:
    """`labels.txt`: one label name a line, id = line number - 1."""
    readers.save_labels(labels, os.path.join(run_dir, LABELS))


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------
def _require(run_dir: str, name: str, what: str = "a finished tfmask pretrain or import run"
             ) -> str:
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        if not os.path.isdir(run_dir):
            raise FileNotFoundError(f"{run_dir}: no such run directory")
        raise FileNotFoundError(f"{run_dir}: no {name} (not {what}?)")
    return path


def read_config(run_dir: str) -> dict:
    return read_json(_require(run_dir, CONFIG))


def encoder_config(run_dir: str) -> EncoderConfig:
    return EncoderConfig(**read_config(run_dir)["encoder"])


def tokenizer_config(run_dir: str) -> TokenizerConfig:
    return TokenizerConfig(**read_config(run_dir)["tokenizer"])


def load_tokenizer(run_dir: str):
    """The tokenizer a run was trained with (a `WordPieceTokenizer`): its `vocab.txt` and
    casing."""
    from tfmask.text.tokenization import WordPieceTokenizer, load_vocabulary

    vocab = load_vocabulary(_require(run_dir, VOCAB))
    return WordPieceTokenizer(vocab, lower_case=tokenizer_config(run_dir).lower_case)


def load_encoder(run_dir: str):
    """The run's `BertEncoder` (weights only: never compiled, whatever the file holds)."""
    return load_keras(_require(run_dir, "encoder.keras"))


def load_masked_lm(run_dir: str):
    """The run's `MaskedLM` (encoder + MLM head), for fill-mask; not compiled."""
    return load_keras(_require(run_dir, "masked_lm.keras"))


def load_labels(run_dir: str) -> list[str]:
    """A fine-tuning run's label names (`labels.txt`), index = id."""
    return readers.load_labels(_require(run_dir, LABELS, "a finished tfmask finetune run"))


def load_finetuned(run_dir: str):
    """(experiment, model, tokenizer) of a finished fine-tuning run; the model is not
    compiled (an export of it tracks no optimizer)."""
    path = _require(run_dir, "model.keras", what="a finished tfmask finetune run")
    try:
        experiment = FinetuneExperiment.from_dict(read_config(run_dir))
    except (TypeError, AttributeError, ValueError) as e:  # JSON, but not this configuration
        if isinstance(e, RunFileError):
            raise
        raise RunFileError(f"{os.path.join(run_dir, CONFIG)}: not a tfmask fine-tuning "
                           f"configuration ({e})") from None
    model = load_keras(path)
    experiment.labels = load_labels(run_dir)
    return experiment, model, load_tokenizer(run_dir)


# ----------------------------------------------------------------------------------------------
# What a run is (`tfmask show`)
# ----------------------------------------------------------------------------------------------
EXPORTS = "exports.json"


def run_kind(run_dir: str) -> str:
    """What wrote `run_dir`: "pretrain", "import" or "finetune" (read from its config.json:
    a fine-tuning config names its `task`, an import its `source`)."""
    config = read_config(run_dir)
    return "finetune" if "task" in config else "import" if "source" in config else "pretrain"


def read_run_json(run_dir: str, name: str, default=None):
    """`run_dir/name` as JSON (`history.json`, `metrics.json`, ...), or `default` when the
    run has not written it."""
    path = os.path.join(run_dir, name)
    return read_json(path) if os.path.exists(path) else default


def record_export(run_dir: str, name: str, result: dict) -> None:
    """Appends an export of the run (`export.export`'s result: kind, both paths, version) to
    `run_dir/exports.json`, so the run lists where it is served from."""
    records = read_run_json(run_dir, EXPORTS, [])
    records.append({"name": name, "kind": result["kind"], "version": result["text"]["version"],
                    "text": result["text"]["path"], "ids": result["ids"]["path"],
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_json(os.path.join(run_dir, EXPORTS), records)
