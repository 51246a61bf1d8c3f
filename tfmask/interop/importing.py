"""Reading any supported checkpoint, and importing one into a tfmask run directory.

`read_checkpoint(source)` picks the reader from what the source looks like:

    source                                           reader
    hf://ORG/NAME (or hf:ORG/NAME)                   huggingface.read_huggingface, once downloaded
    a folder with bert_config.json or *.ckpt*.index  google_bert.read_tf_checkpoint
    a folder with metadata.json and config.json      keras_hub.read_keras_hub
    a folder with config.json                        huggingface.read_huggingface
    a keras-hub preset name (bert_base_en_uncased)   keras_hub.read_keras_hub_by_name

`import_checkpoint(source, run_dir)` reads, builds the models (`canonical.build_models`) and
writes `config.json`, `vocab.txt`, `encoder.keras`, `masked_lm.keras` (when the source has the
MLM head) and `import_report.json`.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from typing import Any

from tfmask import runs
from tfmask.config import Experiment, TokenizerConfig
from tfmask.interop.canonical import Checkpoint, CheckpointError, build_models
from tfmask.interop.google_bert import read_tf_checkpoint
from tfmask.interop.huggingface import download_huggingface, read_huggingface
from tfmask.interop.keras_hub import read_keras_hub, read_keras_hub_by_name


def detect_format(directory: str) -> str:
    """Which reader a local folder needs: "tf_checkpoint", "keras_hub" or "huggingface"."""
    def has(name):
        return os.path.exists(os.path.join(directory, name))

    if has("bert_config.json") or glob.glob(os.path.join(directory, "*.ckpt*.index")):
        return "tf_checkpoint"
    if has("metadata.json") and has("config.json"):
        return "keras_hub"
    if has("config.json"):
        return "huggingface"
    found = sorted(os.listdir(directory))[:8]
    raise CheckpointError(
        f"{directory}: not a BERT checkpoint folder (expected config.json + model.safetensors "
        f"for Hugging Face, bert_config.json + bert_model.ckpt.* for google-research/bert, or "
        f"metadata.json + config.json for a keras-hub preset); found {found}")


_READERS = {"huggingface": read_huggingface, "tf_checkpoint": read_tf_checkpoint,
            "keras_hub": read_keras_hub}


def read_checkpoint(source: str) -> Checkpoint:
    """Reads a checkpoint from a local folder, `hf://ORG/NAME` (or `hf:ORG/NAME`), or a
    keras-hub preset name (e.g. `bert_base_en_uncased`; downloads, needs network)."""
    handle = re.match(r"^hf:(//)?(.+)$", source)
    if handle:
        return read_huggingface(download_huggingface(handle.group(2)))
    if os.path.isdir(source):
        return _READERS[detect_format(source)](source)
    if os.path.exists(source):
        raise CheckpointError(f"{source}: expected a checkpoint folder, not a file")
    if source.startswith(("kaggle://", "keras://")) or re.fullmatch(r"[A-Za-z0-9_.]+", source):
        return read_keras_hub_by_name(source)
    raise CheckpointError(f"{source}: no such folder (and not an hf:// handle or a keras-hub "
                          "preset name)")


def import_checkpoint(source: str, run_dir: str, strict: bool = True,
                      lower_case: bool | None = None, activation: str | None = None,
                      overwrite: bool = False) -> dict:
    """Imports `source` into `run_dir` (a tfmask run directory usable as `--init`).

    Writes `config.json` (encoder and tokenizer sections, and `source`), `vocab.txt`,
    `encoder.keras`, `masked_lm.keras` (only when the source has the MLM head) and
    `import_report.json`.

    Args:
      source: a folder, `hf://ORG/NAME`, or a keras-hub preset name.
      run_dir: output folder; must not hold an encoder already unless `overwrite`.
      strict: see `build_models`.
      lower_case: override the casing read from (or inferred for) the source.
      activation: override the GELU form read from the source: "gelu" (exact) or
        "gelu_approximate" (tanh). The source's own is right for fine-tuning; the override
        reproduces a port that differs (keras-hub's `BertBackbone` always uses the tanh form,
        so on an HF checkpoint that says `gelu` it differs from Hugging Face by ~4e-3).
    Returns: the import report.
    """
    if os.path.exists(os.path.join(run_dir, "encoder.keras")) and not overwrite and not (
            _interrupted_import(run_dir)):
        raise CheckpointError(f"{run_dir} already holds an encoder; choose a new --out "
                              "(or --force to replace it)")
    checkpoint = read_checkpoint(source)
    if lower_case is not None and lower_case != checkpoint.lower_case:
        checkpoint.notes.append(f"lower_case overridden: {checkpoint.lower_case} -> "
                                f"{lower_case}")
        checkpoint.lower_case = lower_case
    if activation is not None and activation != checkpoint.encoder_config.activation:
        checkpoint.notes.append(f"activation overridden: {checkpoint.encoder_config.activation}"
                                f" -> {activation}")
        checkpoint.encoder_config = dataclasses.replace(checkpoint.encoder_config,
                                                        activation=activation)
    encoder, masked_lm, report = build_models(checkpoint, strict=strict)
    os.makedirs(run_dir, exist_ok=True)
    # The report is written last of all: without it the folder is an unfinished import,
    # which the next import into it redoes (every file is written atomically).
    if os.path.exists(os.path.join(run_dir, _REPORT)):
        os.remove(os.path.join(run_dir, _REPORT))
    runs.write_vocabulary(run_dir, checkpoint.vocab)
    experiment = Experiment(encoder=checkpoint.encoder_config, tokenizer=TokenizerConfig(
        vocab=None, vocabulary_size=len(checkpoint.vocab), lower_case=checkpoint.lower_case))
    config: dict[str, Any] = {"encoder": experiment.to_dict()["encoder"],
                              "tokenizer": experiment.to_dict()["tokenizer"],
                              "source": {"path": source, "format": checkpoint.format}}
    runs.write_json(os.path.join(run_dir, runs.CONFIG), config, indent=2)
    runs.save_model(encoder, os.path.join(run_dir, "encoder.keras"))
    stale = os.path.join(run_dir, "masked_lm.keras")
    if masked_lm is not None:
        runs.save_model(masked_lm, stale)
    elif os.path.exists(stale):
        os.remove(stale)
    runs.record_environment(run_dir, source=source)
    report["run_dir"] = run_dir
    runs.write_json(os.path.join(run_dir, _REPORT), report, indent=2)
    return report


_REPORT = "import_report.json"


def _interrupted_import(run_dir: str) -> bool:
    """Whether `run_dir` holds an import that stopped before its report (a kill): its
    `config.json` names a source, and `import_report.json`, written last, is missing."""
    config = os.path.join(run_dir, runs.CONFIG)
    if os.path.exists(os.path.join(run_dir, _REPORT)) or not os.path.exists(config):
        return False
    return "source" in runs.read_json(config)
