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
    *.json           history, metrics and evaluations, written atomically (`write_json`)

A re-run with the same configuration resumes; a different one is refused
(`RunConflictError`) before anything is overwritten.
"""

from __future__ import annotations

import json
import os

import keras

from tfmask.config import EncoderConfig, FinetuneExperiment, TokenizerConfig
from tfmask.text import readers
from tfmask.text.tokenization import WordPieceTokenizer, load_vocabulary, save_vocabulary

CONFIG, VOCAB, LABELS = "config.json", "vocab.txt", "labels.txt"


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
    """The run's `BertEncoder`."""
    return keras.saving.load_model(_require(run_dir, "encoder.keras"))


def load_masked_lm(run_dir: str):
    """The run's `MaskedLM` (encoder + MLM head), for fill-mask."""
    return keras.saving.load_model(_require(run_dir, "masked_lm.keras"))


def load_labels(run_dir: str) -> list[str]:
    """A fine-tuning run's label names (`labels.txt`), index = id."""
    return readers.load_labels(os.path.join(run_dir, LABELS))


def load_finetuned(run_dir: str):
    """(experiment, model, tokenizer) of a finished fine-tuning run."""
    path = _require(run_dir, "model.keras", what="a finished tfmask finetune run")
    experiment = FinetuneExperiment.load(os.path.join(run_dir, CONFIG))
    model = keras.saving.load_model(path)
    experiment.labels = load_labels(run_dir)
    return experiment, model, load_tokenizer(run_dir)
