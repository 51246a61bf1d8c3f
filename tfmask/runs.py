"""Reading run directories: what `pretrain` and `import` write, and what later steps load.

A run directory (from `tfmask pretrain` or `tfmask import`) holds at least

    config.json     `encoder` and `tokenizer` sections (a pretraining run: the full Experiment)
    vocab.txt       the WordPiece vocabulary
    encoder.keras   the `BertEncoder`
    masked_lm.keras encoder + MLM head (pretraining runs; imports whose source has the head)
"""

from __future__ import annotations

import json
import os

import keras

from tfmask.config import EncoderConfig, TokenizerConfig
from tfmask.tokenization import WordPieceTokenizer, load_vocabulary


def _require(run_dir: str, name: str) -> str:
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        if not os.path.isdir(run_dir):
            raise FileNotFoundError(f"{run_dir}: no such run directory")
        raise FileNotFoundError(f"{run_dir}: no {name} (not a finished tfmask pretrain or "
                                "import run?)")
    return path


def read_config(run_dir: str) -> dict:
    with open(_require(run_dir, "config.json")) as fh:
        return json.load(fh)


def encoder_config(run_dir: str) -> EncoderConfig:
    return EncoderConfig(**read_config(run_dir)["encoder"])


def tokenizer_config(run_dir: str) -> TokenizerConfig:
    return TokenizerConfig(**read_config(run_dir)["tokenizer"])


def load_tokenizer(run_dir: str) -> WordPieceTokenizer:
    """The tokenizer a run was trained with: its `vocab.txt` and casing."""
    vocab = load_vocabulary(_require(run_dir, "vocab.txt"))
    return WordPieceTokenizer(vocab, lower_case=tokenizer_config(run_dir).lower_case)


def load_encoder(run_dir: str):
    """The run's `BertEncoder`."""
    import tfmask.heads  # noqa: F401  registers the serializable classes

    return keras.saving.load_model(_require(run_dir, "encoder.keras"))


def load_masked_lm(run_dir: str):
    """The run's `MaskedLM` (encoder + MLM head), for fill-mask."""
    import tfmask.heads  # noqa: F401

    return keras.saving.load_model(_require(run_dir, "masked_lm.keras"))
