"""The canonical checkpoint form, and the table that maps it onto tfmask's models.

Every reader (`huggingface`, `google_bert`, `keras_hub`) turns its source into one form: the
variable names and layouts of the original google-research/bert TensorFlow checkpoints
(kernels `[in, out]`, LayerNorm `gamma`/`beta`). One table then maps that form onto
`BertEncoder` and `MaskedLM`, reshaping the per-head attention weights of
`keras.layers.MultiHeadAttention` (H = hidden_dim, N = num_heads, D = H / N). Inside layer i,
canonical names start with `bert/encoder/layer_i/` and tfmask's with `transformer_layer_i/`:

    canonical                        tfmask variable                         reshape
    bert/embeddings/word_embeddings  token_embedding/embeddings              -
    attention/self/query/kernel      self_attention/query/kernel             [H, H] -> [H, N, D]
    attention/self/query/bias        self_attention/query/bias               [H] -> [N, D]
    attention/output/dense/kernel    self_attention/attention_output/kernel  [H, H] -> [N, D, H]
    output/LayerNorm/gamma           output_layer_norm/gamma                 -
    cls/predictions/output_bias      mlm_head/bias                           -

`assign` copies tensors along a table; `build_models` builds the encoder (and the MLM head
when the checkpoint has one) and refuses missing tensors, shape mismatches, an incomplete
MLM head and tensors beyond the declared layers, each named in the source's own spelling.
`to_canonical` reads the same tables the other way (tfmask's weights out, for the writers).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Callable

import numpy as np

from tfmask.config import EncoderConfig
from tfmask.text.tokenization import load_vocabulary


class CheckpointError(ValueError):
    """A checkpoint that cannot be imported; the message says which tensor or file and why."""


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read into the canonical (google-research/bert) form.

    Attributes:
      source: where it came from (a path or handle).
      format: "huggingface", "tf_checkpoint" or "keras_hub".
      encoder_config: the encoder shape the source's config file declares.
      vocab: the WordPiece vocabulary (id = index).
      lower_case: whether the vocabulary is uncased (lower-case + strip accents).
      tensors: canonical name -> float32 array in canonical layout.
      source_names: canonical name -> the name in the source (for messages).
      source_shapes: canonical name -> the shape as stored in the source (Hugging Face
        Linear weights are [out, in]; for messages).
      skipped: source name -> why it is not imported (known, deliberately unused tensors).
      unknown: source names that match nothing tfmask knows.
      notes: anything a user should know about the conversion.
    """

    source: str
    format: str
    encoder_config: EncoderConfig
    vocab: list[str]
    lower_case: bool
    tensors: dict[str, np.ndarray]
    source_names: dict[str, str]
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    source_shapes: dict[str, tuple] = dataclasses.field(default_factory=dict)
    unknown: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def has_masked_lm_head(self) -> bool:
        return all(name in self.tensors for name in _MLM_HEAD_NAMES)

    def describe(self, canonical: str) -> str:
        """`canonical` as the source spells it (and the canonical name when different)."""
        original = self.source_names.get(canonical, canonical)
        return original if original == canonical else f"{original} (= {canonical})"


# ---------------------------------------------------------------------------------------------
# The mapping: canonical names -> tfmask variables.

#: Tensors tfmask can initialise itself when a source lacks them (HF BertForMaskedLM and
#: keras-hub MLM exports have no pooler).
_OPTIONAL = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")


def _per_head(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Canonical shape of a per-head MHA weight: [H, N, D] -> [H, N*D], [N, D] -> [N*D]."""
    if len(shape) == 3:
        return (shape[0], shape[1] * shape[2])
    return (shape[0] * shape[1],)


def _per_head_output(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Canonical shape of the MHA output kernel: [N, D, H] -> [N*D, H]."""
    return (shape[0] * shape[1], shape[2])


def _same(shape):
    return tuple(shape)


def encoder_table(num_layers: int) -> list[tuple[str, str, Callable]]:
    """(canonical name, tfmask variable path, variable shape -> canonical shape) per weight."""
    rows = [
        ("bert/embeddings/word_embeddings", "token_embedding/embeddings", _same),
        ("bert/embeddings/position_embeddings", "position_embedding/embeddings", _same),
        ("bert/embeddings/token_type_embeddings", "segment_embedding/embeddings", _same),
        ("bert/embeddings/LayerNorm/gamma", "embeddings_layer_norm/gamma", _same),
        ("bert/embeddings/LayerNorm/beta", "embeddings_layer_norm/beta", _same),
    ]
    for i in range(num_layers):
        src, dst = f"bert/encoder/layer_{i}/", f"transformer_layer_{i}/"
        for part in ("query", "key", "value"):
            rows += [(f"{src}attention/self/{part}/kernel",
                      f"{dst}self_attention/{part}/kernel", _per_head),
                     (f"{src}attention/self/{part}/bias",
                      f"{dst}self_attention/{part}/bias", _per_head)]
        rows += [
            (f"{src}attention/output/dense/kernel",
             f"{dst}self_attention/attention_output/kernel", _per_head_output),
            (f"{src}attention/output/dense/bias",
             f"{dst}self_attention/attention_output/bias", _same),
            (f"{src}attention/output/LayerNorm/gamma", f"{dst}self_attention_layer_norm/gamma",
             _same),
            (f"{src}attention/output/LayerNorm/beta", f"{dst}self_attention_layer_norm/beta",
             _same),
            (f"{src}intermediate/dense/kernel", f"{dst}intermediate_dense/kernel", _same),
            (f"{src}intermediate/dense/bias", f"{dst}intermediate_dense/bias", _same),
            (f"{src}output/dense/kernel", f"{dst}output_dense/kernel", _same),
            (f"{src}output/dense/bias", f"{dst}output_dense/bias", _same),
            (f"{src}output/LayerNorm/gamma", f"{dst}output_layer_norm/gamma", _same),
            (f"{src}output/LayerNorm/beta", f"{dst}output_layer_norm/beta", _same),
        ]
    rows += [("bert/pooler/dense/kernel", "pooler_dense/kernel", _same),
             ("bert/pooler/dense/bias", "pooler_dense/bias", _same)]
    return rows


MLM_HEAD_TABLE = [
    ("cls/predictions/transform/dense/kernel", "mlm_head/dense/kernel", _same),
    ("cls/predictions/transform/dense/bias", "mlm_head/dense/bias", _same),
    ("cls/predictions/transform/LayerNorm/gamma", "mlm_head/layer_norm/gamma", _same),
    ("cls/predictions/transform/LayerNorm/beta", "mlm_head/layer_norm/beta", _same),
    ("cls/predictions/output_bias", "mlm_head/bias", _same),
]
_MLM_HEAD_NAMES = tuple(row[0] for row in MLM_HEAD_TABLE)


def is_canonical(name: str) -> bool:
    """Whether `name` is a canonical tensor the mapping uses (any layer index)."""
    generic = re.sub(r"layer_\d+/", "layer_0/", name)
    return generic in _KNOWN_CANONICAL


_KNOWN_CANONICAL = {row[0] for row in encoder_table(1)} | {row[0] for row in MLM_HEAD_TABLE}


# ---------------------------------------------------------------------------------------------
# Files every reader shares: BERT config files, JSON, the vocabulary.

def _config_value(config: dict, key: str, path: str):
    if key not in config:
        raise CheckpointError(f"{path}: missing {key!r}")
    return config[key]


def encoder_config_from_bert_config(config: dict, path: str, activations: dict) -> EncoderConfig:
    """A BERT `config.json` / `bert_config.json` -> `EncoderConfig`; unsupported -> error."""
    act = config.get("hidden_act", "gelu")
    if act not in activations:
        raise CheckpointError(f"{path}: hidden_act {act!r} is not supported; tfmask supports "
                              f"{sorted(activations)}")
    eps = float(config.get("layer_norm_eps", 1e-12))
    if abs(eps - 1e-12) > 1e-15:
        raise CheckpointError(f"{path}: layer_norm_eps {eps} is not supported (BERT uses 1e-12)")
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise CheckpointError(f"{path}: position_embedding_type {position_type!r} is not "
                              "supported (only absolute position embeddings)")
    hidden = int(_config_value(config, "hidden_size", path))
    heads = int(_config_value(config, "num_attention_heads", path))
    if hidden % heads:
        raise CheckpointError(f"{path}: hidden_size {hidden} is not divisible by "
                              f"num_attention_heads {heads}")
    return EncoderConfig(
        vocabulary_size=int(_config_value(config, "vocab_size", path)),
        num_layers=int(_config_value(config, "num_hidden_layers", path)),
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=int(_config_value(config, "intermediate_size", path)),
        dropout=float(config.get("hidden_dropout_prob", 0.1)),
        max_sequence_length=int(config.get("max_position_embeddings", 512)),
        num_segments=int(config.get("type_vocab_size", 2)),
        activation=activations[act],
    )


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def infer_lower_case(vocab: list[str]) -> bool:
    """An uncased vocabulary has no upper-case letters outside `[SPECIAL]` tokens."""
    return not any(any(c.isupper() for c in t) for t in vocab
                   if not (t.startswith("[") and t.endswith("]")))


def read_vocab(directory: str, candidates=("vocab.txt",)) -> list[str]:
    for name in candidates:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return load_vocabulary(path)
    raise CheckpointError(f"{directory}: no {' or '.join(candidates)} (the WordPiece "
                          "vocabulary the checkpoint was trained with)")


# ---------------------------------------------------------------------------------------------
# Canonical tensors -> tfmask models.

def assign(model, table, checkpoint: Checkpoint, optional=()) -> list[str]:
    """Copies the checkpoint's tensors into `model` following `table`; returns the canonical
    names it initialised itself (absent optional tensors). Raises one `CheckpointError` that
    lists every missing tensor and every shape mismatch."""
    variables = {w.path: w for w in model.weights}
    problems, defaulted, updates = [], [], []
    for canonical, path, canonical_shape in table:
        variable = variables.get(path)
        if variable is None:  # a table/model disagreement is a tfmask bug
            raise RuntimeError(f"tfmask model has no variable {path}")
        expected = canonical_shape(tuple(variable.shape))
        if canonical not in checkpoint.tensors:
            if canonical in optional:
                defaulted.append(canonical)
            else:
                problems.append(f"missing {checkpoint.describe(canonical)}, expected shape "
                                f"{list(expected)}")
            continue
        value = checkpoint.tensors[canonical]
        if tuple(value.shape) != expected:
            stored = checkpoint.source_shapes.get(canonical, tuple(value.shape))
            layout = ("" if tuple(stored) == tuple(value.shape) else
                      f" (stored as {list(stored)}, [out, in], in the source)")
            problems.append(f"{checkpoint.describe(canonical)}: expected shape "
                            f"{list(expected)}, found {list(value.shape)}{layout}")
            continue
        updates.append((variable, value.reshape(variable.shape)))
    if problems:
        raise CheckpointError(f"{checkpoint.source}: the weights do not match the config "
                              f"({len(problems)} problems):\n  " + "\n  ".join(problems))
    for variable, value in updates:
        variable.assign(value.astype(variable.dtype))
    return defaulted


def to_canonical(encoder, masked_lm=None) -> dict[str, np.ndarray]:
    """tfmask weights -> canonical name -> float32 array in canonical layout: `assign`'s
    inverse, along the same tables (a reshape each way, so the values are bit-identical).

    Args:
      encoder: a `BertEncoder`.
      masked_lm: a `MaskedLM` around `encoder` (adds the `cls/predictions/...` tensors), or
        None.
    """
    tensors = {}
    tables = [(encoder, encoder_table(encoder.num_layers))]
    if masked_lm is not None:
        tables.append((masked_lm, MLM_HEAD_TABLE))
    for model, table in tables:
        variables = {w.path: w for w in model.weights}
        for canonical, path, canonical_shape in table:
            variable = variables.get(path)
            if variable is None:  # a table/model disagreement is a tfmask bug
                raise RuntimeError(f"tfmask model has no variable {path}")
            value = np.asarray(variable.numpy(), np.float32)
            tensors[canonical] = value.reshape(canonical_shape(tuple(variable.shape)))
    return tensors


def build_models(checkpoint: Checkpoint, strict: bool = True):
    """Builds a `BertEncoder` (and a `MaskedLM` when the checkpoint has the MLM head) holding
    the checkpoint's weights.

    Args:
      checkpoint: from `read_checkpoint`.
      strict: when True, tensors the mapping does not know are an error (listed); when
        False, they are listed in the report only.

    Returns:
      (encoder, masked_lm or None, report dict).
    """
    from tfmask.model.encoder import BertEncoder
    from tfmask.model.heads import MaskedLM

    if checkpoint.unknown and strict:
        raise CheckpointError(
            f"{checkpoint.source}: {len(checkpoint.unknown)} tensors match no BERT weight "
            "tfmask knows (pass --allow-unknown / strict=False to import the rest anyway):\n  "
            + "\n  ".join(checkpoint.unknown))
    vocab_rows = checkpoint.encoder_config.vocabulary_size
    if len(checkpoint.vocab) != vocab_rows:
        raise CheckpointError(
            f"{checkpoint.source}: vocab.txt has {len(checkpoint.vocab)} tokens but the config "
            f"declares vocab_size {vocab_rows} (rows of the word embedding); they must be the "
            "vocabulary the checkpoint was trained with")
    encoder = BertEncoder.from_encoder_config(checkpoint.encoder_config)
    mapped = encoder_table(checkpoint.encoder_config.num_layers)
    defaulted = assign(encoder, mapped, checkpoint, optional=_OPTIONAL)
    masked_lm = None
    if checkpoint.has_masked_lm_head():
        masked_lm = MaskedLM(encoder)
        assign(masked_lm, MLM_HEAD_TABLE, checkpoint)
        mapped = mapped + MLM_HEAD_TABLE
    else:
        present = [n for n in _MLM_HEAD_NAMES if n in checkpoint.tensors]
        if present:
            raise CheckpointError(f"{checkpoint.source}: incomplete MLM head: has "
                                  f"{[checkpoint.describe(n) for n in present]} but not "
                                  f"{[n for n in _MLM_HEAD_NAMES if n not in present]}")
    used = {row[0] for row in mapped}
    leftovers = sorted(set(checkpoint.tensors) - used)
    if leftovers:  # e.g. layer_7 in a checkpoint whose config says 6 layers
        raise CheckpointError(
            f"{checkpoint.source}: tensors beyond what the config declares "
            f"({checkpoint.encoder_config.num_layers} layers): "
            + ", ".join(checkpoint.describe(n) for n in leftovers))
    report = {
        "source": checkpoint.source,
        "format": checkpoint.format,
        "encoder": dataclasses.asdict(checkpoint.encoder_config),
        "lower_case": checkpoint.lower_case,
        "masked_lm_head": masked_lm is not None,
        "imported": len(used) - len(defaulted),
        "initialized_randomly": [checkpoint.describe(n) for n in defaulted],
        "skipped": checkpoint.skipped,
        "unknown": checkpoint.unknown,
        "notes": checkpoint.notes,
    }
    return encoder, masked_lm, report
