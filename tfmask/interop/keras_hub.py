"""keras-hub BERT presets -> the canonical checkpoint form.

keras-hub's own loader reads the preset (a saved preset folder, or a preset name that it
downloads); its `BertBackbone` weights are then renamed and reshaped. Inside layer i,
keras-hub paths start with `transformer_layer_i/` and canonical names with
`bert/encoder/layer_i/`:

    keras-hub                                     canonical                        reshape
    token_embedding/embeddings                    bert/embeddings/word_embeddings  -
    self_attention_layer/query/kernel             attention/self/query/kernel      [H,N,D]->[H,N*D]
    self_attention_layer/attention_output/kernel  attention/output/dense/kernel    [N,D,H]->[N*D,H]
    feedforward_layer_norm/gamma                  output/LayerNorm/gamma           -
    pooled_dense/kernel                           bert/pooler/dense/kernel         -

Backbone presets hold no MLM head, and `BertBackbone` always uses the tanh GELU.
`write_keras_hub` writes a preset the other way, with keras-hub's own saver.
"""

from __future__ import annotations

import os
import re
from typing import Callable

import numpy as np

from tfmask.config import EncoderConfig
from tfmask.interop.canonical import Checkpoint, CheckpointError
from tfmask.text.tokenization import SPECIAL_TOKENS

def _keras_hub_to_canonical(path: str) -> tuple[str | None, Callable]:
    """A keras-hub `BertBackbone` weight path -> (canonical name, array transform)."""
    flat = {"token_embedding/embeddings": "bert/embeddings/word_embeddings",
            "position_embedding/embeddings": "bert/embeddings/position_embeddings",
            "segment_embedding/embeddings": "bert/embeddings/token_type_embeddings",
            "embeddings_layer_norm/gamma": "bert/embeddings/LayerNorm/gamma",
            "embeddings_layer_norm/beta": "bert/embeddings/LayerNorm/beta",
            "pooled_dense/kernel": "bert/pooler/dense/kernel",
            "pooled_dense/bias": "bert/pooler/dense/bias"}
    if path in flat:
        return flat[path], lambda a: a
    m = re.fullmatch(r"transformer_layer_(\d+)/(.+)", path)
    if not m:
        return None, lambda a: a
    i, rest = m.groups()
    out = f"bert/encoder/layer_{i}/"
    qkv = re.fullmatch(r"self_attention_layer/(query|key|value)/(kernel|bias)", rest)
    if qkv:
        part, kind = qkv.groups()
        if kind == "kernel":  # [H, N, D] -> [H, N*D]
            return f"{out}attention/self/{part}/kernel", lambda a: a.reshape(a.shape[0], -1)
        return f"{out}attention/self/{part}/bias", lambda a: a.reshape(-1)
    table = {
        "self_attention_layer/attention_output/kernel": "attention/output/dense/kernel",
        "self_attention_layer/attention_output/bias": "attention/output/dense/bias",
        "self_attention_layer_norm/gamma": "attention/output/LayerNorm/gamma",
        "self_attention_layer_norm/beta": "attention/output/LayerNorm/beta",
        "feedforward_intermediate_dense/kernel": "intermediate/dense/kernel",
        "feedforward_intermediate_dense/bias": "intermediate/dense/bias",
        "feedforward_output_dense/kernel": "output/dense/kernel",
        "feedforward_output_dense/bias": "output/dense/bias",
        "feedforward_layer_norm/gamma": "output/LayerNorm/gamma",
        "feedforward_layer_norm/beta": "output/LayerNorm/beta",
    }
    if rest not in table:
        return None, lambda a: a
    if rest.endswith("attention_output/kernel"):  # [N, D, H] -> [N*D, H]
        return out + table[rest], lambda a: a.reshape(-1, a.shape[-1])
    return out + table[rest], lambda a: a


def read_keras_hub(preset: str) -> Checkpoint:
    """Loads a keras-hub BERT preset (local folder or preset name) with keras-hub's loader."""
    import keras_hub

    try:
        backbone = keras_hub.models.BertBackbone.from_preset(preset)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    except Exception as e:  # noqa: BLE001  damaged weights or configs: h5py, JSON, Keras
        if not os.path.isdir(preset):  # a preset name: read_keras_hub_by_name says more
            raise
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{preset}: keras-hub cannot load this preset folder "
                              f"({type(e).__name__}: {reason})") from None
    vocab = list(tokenizer.get_vocabulary())
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise CheckpointError(f"{preset}: the preset's vocabulary lacks {missing}")
    encoder_config = EncoderConfig(
        vocabulary_size=backbone.vocabulary_size, num_layers=backbone.num_layers,
        num_heads=backbone.num_heads, hidden_dim=backbone.hidden_dim,
        intermediate_dim=backbone.intermediate_dim, dropout=float(backbone.dropout),
        max_sequence_length=backbone.max_sequence_length,
        num_segments=backbone.num_segments, activation="gelu_approximate")
    tensors, names, unknown = {}, {}, []
    for weight in backbone.weights:
        canonical, transform = _keras_hub_to_canonical(weight.path)
        if canonical is None:
            unknown.append(weight.path)
            continue
        tensors[canonical] = transform(np.asarray(weight.numpy(), np.float32))
        names[canonical] = weight.path
    notes = ["activation: keras-hub's BertBackbone uses the tanh GELU approximation",
             "no MLM head: keras-hub backbone presets hold the encoder only"]
    return Checkpoint(preset, "keras_hub", encoder_config, vocab, bool(tokenizer.lowercase),
                      tensors, names, unknown=unknown, notes=notes)


def read_keras_hub_by_name(name: str) -> Checkpoint:
    """Loads a keras-hub BERT preset by name (`bert_base_en_uncased`, `kaggle://...`,
    `keras://...`); an unknown name or a failed download is a `CheckpointError`."""
    import keras_hub

    known = sorted(keras_hub.models.BertBackbone.presets)
    if not name.startswith(("kaggle://", "keras://")) and name not in known:
        raise CheckpointError(f"{name}: no such folder, and not a keras-hub BERT preset "
                              f"(known: {', '.join(known)})")
    try:
        return read_keras_hub(name)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001  download failures from kagglehub
        raise CheckpointError(f"{name}: keras-hub could not load the preset ({type(e).__name__}:"
                              f" {str(e).splitlines()[0] if str(e) else ''}). Offline? Load it "
                              "on a connected machine and pass the saved preset folder") from None


# ---------------------------------------------------------------------------------------------
# Writing: canonical tensors -> a keras-hub preset folder.

def write_keras_hub(directory: str, tensors: dict[str, np.ndarray], encoder_config,
                    vocab: list[str], lower_case: bool,
                    classifier: tuple[np.ndarray, np.ndarray] | None = None,
                    classifier_dropout: float = 0.1):
    """Writes a keras-hub preset with keras-hub's own saver: `config.json`, `metadata.json`
    and `model.weights.h5` of a `BertBackbone`, `tokenizer.json` and
    `assets/tokenizer/vocabulary.txt` of a `BertTokenizer`, and with `classifier` a
    `BertTextClassifier` task (`task.json`, `task.weights.h5`).

    Each backbone weight takes its canonical tensor through the reader's own table
    (`_keras_hub_to_canonical`), reshaped to the weight's shape: its transforms are reshapes,
    so this is their exact inverse. `BertBackbone` always computes the tanh GELU, whatever
    `encoder_config.activation` says (the caller reports the difference it makes). The
    tokenizer strips accents exactly when it lower-cases, as tfmask's does (keras-hub's
    default keeps them, which maps "café" to `[UNK]` with an uncased vocabulary).

    Args:
      directory: an existing, empty folder.
      tensors: canonical name -> array (`canonical.to_canonical`); the MLM head is not used.
      encoder_config: the encoder's `EncoderConfig`.
      vocab, lower_case: the tokenizer.
      classifier: `(kernel [H, C], bias [C])` of a sequence classifier, or None.
      classifier_dropout: the dropout before its dense layer.

    Returns:
      the `BertBackbone` written.
    """
    import keras_hub

    c = encoder_config
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=c.vocabulary_size, num_layers=c.num_layers, num_heads=c.num_heads,
        hidden_dim=c.hidden_dim, intermediate_dim=c.intermediate_dim, dropout=c.dropout,
        max_sequence_length=c.max_sequence_length, num_segments=c.num_segments)
    for weight in backbone.weights:
        canonical, _ = _keras_hub_to_canonical(weight.path)
        if canonical is None or canonical not in tensors:  # keras-hub changed its layout
            raise CheckpointError(f"keras-hub BertBackbone weight {weight.path} has no "
                                  "tfmask counterpart")
        weight.assign(tensors[canonical].reshape(tuple(weight.shape)))
    if classifier is None:
        backbone.save_to_preset(directory)
    else:  # the task's saver writes the backbone too
        kernel, bias = classifier
        task = keras_hub.models.BertTextClassifier(backbone, num_classes=kernel.shape[1],
                                                   preprocessor=None,
                                                   dropout=classifier_dropout)
        task.output_dense.kernel.assign(kernel)
        task.output_dense.bias.assign(bias)
        task.save_to_preset(directory)
    keras_hub.models.BertTokenizer(vocabulary=list(vocab), lowercase=lower_case,
                                   strip_accents=lower_case).save_to_preset(directory)
    return backbone
