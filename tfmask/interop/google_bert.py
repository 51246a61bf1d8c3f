"""Original google-research/bert TensorFlow checkpoints -> the canonical checkpoint form.

A folder holds `bert_config.json`, `bert_model.ckpt.{index,data-*}` (or another `*.ckpt*`
prefix) and `vocab.txt`. Its variable names are already canonical; Adam slots, step counters
and loss-scale state, and the next-sentence head are skipped with a reason.
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np

from tfmask.interop.canonical import (Checkpoint, CheckpointError,
                                      encoder_config_from_bert_config, infer_lower_case,
                                      is_canonical, read_json, read_vocab)

#: google-research/bert's `gelu` is the tanh approximation,
#: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), whatever the config calls it.
_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu"}
#: Optimizer and mixed-precision state saved beside the weights.
_OPTIMIZER_STATE = re.compile(r"(/adam_[mv]$|^global_step$|^bad_steps$|^good_steps$|"
                              r"^loss_scale$|^current_loss_scale$)")
_IGNORED = {
    "cls/seq_relationship/output_weights": "next-sentence-prediction head (not used by tfmask)",
    "cls/seq_relationship/output_bias": "next-sentence-prediction head (not used by tfmask)",
}


def _checkpoint_prefix(directory: str) -> str:
    indexes = sorted(glob.glob(os.path.join(directory, "*.ckpt*.index")))
    if not indexes:
        raise CheckpointError(f"{directory}: no TensorFlow checkpoint (bert_model.ckpt.index)")
    preferred = [p for p in indexes if os.path.basename(p) == "bert_model.ckpt.index"]
    return (preferred or indexes)[0][: -len(".index")]


def read_tf_checkpoint(directory: str) -> Checkpoint:
    """Reads an original google-research/bert folder: bert_config.json, bert_model.ckpt.*,
    vocab.txt. Casing is inferred from the vocabulary (the folder carries no flag)."""
    import tensorflow as tf

    config_path = os.path.join(directory, "bert_config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{directory}: no bert_config.json")
    encoder_config = encoder_config_from_bert_config(read_json(config_path), config_path,
                                                     _ACTIVATIONS)
    prefix = _checkpoint_prefix(directory)
    tensors, names, skipped, unknown = {}, {}, {}, []
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in sorted(reader.get_variable_to_shape_map()):
            if _OPTIMIZER_STATE.search(name):
                skipped[name] = "optimizer state"
            elif name in _IGNORED:
                skipped[name] = _IGNORED[name]
            elif is_canonical(name):
                tensors[name] = np.asarray(reader.get_tensor(name), np.float32)
                names[name] = name
            else:
                unknown.append(name)
    except Exception as e:  # noqa: BLE001  truncated .index/.data: DataLossError, IndexError
        text = (e.message if isinstance(e, tf.errors.OpError) else str(e)).strip()
        reason = f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
        raise CheckpointError(f"{prefix}.*: damaged TensorFlow checkpoint ({reason})") from None
    vocab = read_vocab(directory)
    lower_case = infer_lower_case(vocab)
    notes = [f"weights: {prefix}",
             f"lower_case={lower_case} inferred from vocab.txt (upper-case tokens "
             f"{'absent' if lower_case else 'present'})",
             "activation: google-research/bert's gelu is the tanh approximation"]
    return Checkpoint(directory, "tf_checkpoint", encoder_config, vocab, lower_case, tensors,
                      names, skipped, unknown=unknown, notes=notes)
