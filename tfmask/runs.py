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

import json
import os
import shutil

import keras

from tfmask.config import EncoderConfig, FinetuneExperiment, TokenizerConfig
from tfmask.text import readers
from tfmask.text.tokenization import WordPieceTokenizer, load_vocabulary, save_vocabulary

CONFIG, VOCAB, LABELS = "config.json", "vocab.txt", "labels.txt"
CHECKPOINTS = "checkpoints"
#: The files a run writes after its last step, last of all: all present = the run finished.
FINAL_FILES = {"pretrain": ("encoder.keras", "masked_lm.keras"), "finetune": ("model.keras",)}


class RunConflictError(ValueError):
    """The run directory belongs to a run with a different configuration."""


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------
def claim_run_dir(experiment, run_dir: str) -> None:
    """Writes `run_dir/config.json`, or checks that the one there is `experiment` (a re-run
    resumes); a different configuration raises `RunConflictError` listing the differences."""
    path = os.path.join(run_dir, CONFIG)
    if os.path.exists(path):
        differences = diff_dicts(type(experiment).load(path).to_dict(), experiment.to_dict())
        if differences:
            raise RunConflictError(
                f"{run_dir} holds a run with a different configuration ("
                + "; ".join(differences) + "). Re-run with the same options to resume, or "
                "choose a new --out.")
    experiment.save(path)


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
    """Writes `value` as JSON through a temporary file, so a kill never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(value, fh, indent=indent)
    os.replace(tmp, path)


def _temporary(path: str) -> str:
    """A hidden name beside `path` with the same ending (Keras checks `.keras`, `.weights.h5`)."""
    return os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))


def _optimizer_free(model):
    """`model`, or an uncompiled copy with its config and weights when it is compiled.

    Keras writes a compiled model's optimizer variables (Adam's two moments: twice the
    weights) and compile config into `.keras` files; an uncompiled copy has neither."""
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
    tmp = _temporary(path)
    _optimizer_free(model).save(tmp)
    os.replace(tmp, path)


def _optimizer_of(model) -> list:
    """`objects_to_skip` for Keras's weight files: the model's optimizer, if it has one."""
    optimizer = getattr(model, "optimizer", None)
    return [optimizer] if optimizer is not None else []


def save_weights(model, path: str) -> None:
    """Writes `model`'s weights (not its optimizer's) to a `.weights.h5` file, atomically."""
    tmp = _temporary(path)
    keras.saving.save_weights(model, tmp, objects_to_skip=_optimizer_of(model))
    os.replace(tmp, path)


def load_weights(model, path: str) -> None:
    """Loads a `.weights.h5` file into `model`'s weights, leaving its optimizer alone (and
    ignoring the optimizer a file from an older version holds)."""
    keras.saving.load_weights(model, path, objects_to_skip=_optimizer_of(model))


def is_finished(run_dir: str, command: str) -> bool:
    """Whether `run_dir` holds a finished `command` ("pretrain", "finetune") run."""
    return all(os.path.exists(os.path.join(run_dir, name)) for name in FINAL_FILES[command])


def prune_checkpoints(run_dir: str) -> None:
    """Removes a finished run's `checkpoints/` (the only optimizer state it held)."""
    shutil.rmtree(os.path.join(run_dir, CHECKPOINTS), ignore_errors=True)


def write_vocabulary(run_dir: str, vocab: list[str]) -> None:
    """`vocab.txt`, one token a line (the casing lives in `config.json`'s tokenizer section)."""
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
    with open(_require(run_dir, CONFIG)) as fh:
        return json.load(fh)


def encoder_config(run_dir: str) -> EncoderConfig:
    return EncoderConfig(**read_config(run_dir)["encoder"])


def tokenizer_config(run_dir: str) -> TokenizerConfig:
    return TokenizerConfig(**read_config(run_dir)["tokenizer"])


def load_tokenizer(run_dir: str) -> WordPieceTokenizer:
    """The tokenizer a run was trained with: its `vocab.txt` and casing."""
    vocab = load_vocabulary(_require(run_dir, VOCAB))
    return WordPieceTokenizer(vocab, lower_case=tokenizer_config(run_dir).lower_case)


def load_encoder(run_dir: str):
    """The run's `BertEncoder` (weights only: never compiled, whatever the file holds)."""
    return keras.saving.load_model(_require(run_dir, "encoder.keras"), compile=False)


def load_masked_lm(run_dir: str):
    """The run's `MaskedLM` (encoder + MLM head), for fill-mask; not compiled."""
    return keras.saving.load_model(_require(run_dir, "masked_lm.keras"), compile=False)


def load_labels(run_dir: str) -> list[str]:
    """A fine-tuning run's label names (`labels.txt`), index = id."""
    return readers.load_labels(os.path.join(run_dir, LABELS))


def load_finetuned(run_dir: str):
    """(experiment, model, tokenizer) of a finished fine-tuning run; the model is not
    compiled (an export of it tracks no optimizer)."""
    path = _require(run_dir, "model.keras", what="a finished tfmask finetune run")
    experiment = FinetuneExperiment.load(os.path.join(run_dir, CONFIG))
    model = keras.saving.load_model(path, compile=False)
    experiment.labels = load_labels(run_dir)
    return experiment, model, load_tokenizer(run_dir)
