"""Import published BERT checkpoints into a tfmask run directory.

Three readers turn a checkpoint into one canonical form, the variable names and layouts of
the original google-research/bert TensorFlow checkpoints (kernels `[in, out]`, LayerNorm
`gamma`/`beta`); one table then maps that form onto `BertEncoder` and `MaskedLM`:

    source                       reader                        canonical name (example)
    Hugging Face folder          read_huggingface              encoder.layer.0.attention.self.query.weight
      (safetensors / .bin)         transpose Linear [out, in]    -> bert/encoder/layer_0/attention/self/query/kernel
    google-research/bert folder  read_tf_checkpoint            (already canonical)
    keras-hub preset             read_keras_hub                transformer_layer_0/self_attention_layer/query/kernel
                                   reshape [H, N, D] -> [H, H]   -> bert/encoder/layer_0/attention/self/query/kernel

    canonical                                    tfmask variable                                   reshape
    bert/embeddings/word_embeddings              token_embedding/embeddings                        -
    bert/encoder/layer_i/attention/self/query/kernel  transformer_layer_i/self_attention/query/kernel   [H, H] -> [H, N, D]
    bert/encoder/layer_i/attention/output/dense/kernel .../self_attention/attention_output/kernel   [H, H] -> [N, D, H]
    cls/predictions/output_bias                  mlm_head/bias                                     -

Every tensor of the source is accounted for: mapped, known and skipped with a reason (the
`position_ids` buffer, the next-sentence head, optimizer slots, a task head, the tied
decoder), or unknown. Unknown tensors, missing tensors and shape mismatches are errors that
name the tensor in the source's own spelling, with expected and found shapes.

Entry points: `read_checkpoint(source)` -> `Checkpoint`; `build_models(checkpoint)`;
`import_checkpoint(source, run_dir)` writes `config.json`, `vocab.txt`, `encoder.keras`,
`masked_lm.keras` (when the source has the MLM head) and `import_report.json`.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
from typing import Any, Callable

import numpy as np

from tfmask.config import EncoderConfig, Experiment, TokenizerConfig
from tfmask.tokenization import SPECIAL_TOKENS, load_vocabulary, save_vocabulary


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

_MLM_HEAD_NAMES = (
    "cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
    "cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta",
    "cls/predictions/output_bias",
)
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


def _canonical_known(name: str) -> bool:
    """Whether `name` is a canonical tensor the mapping uses (any layer index)."""
    generic = re.sub(r"layer_\d+/", "layer_0/", name)
    return generic in _KNOWN_CANONICAL


_KNOWN_CANONICAL = {row[0] for row in encoder_table(1)} | {row[0] for row in MLM_HEAD_TABLE}


# ---------------------------------------------------------------------------------------------
# Config files -> EncoderConfig.

#: Activation names in BERT config files -> `BertEncoder` activation.
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                   "gelu_pytorch_tanh": "gelu_approximate", "gelu_fast": "gelu_approximate",
                   "relu": "relu"}
#: google-research/bert's `gelu` is the tanh approximation (modeling.py), whatever the name.
_TF_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu"}


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


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def infer_lower_case(vocab: list[str]) -> bool:
    """An uncased vocabulary has no upper-case letters outside `[SPECIAL]` tokens."""
    return not any(any(c.isupper() for c in t) for t in vocab
                   if not (t.startswith("[") and t.endswith("]")))


def _vocab(directory: str, candidates=("vocab.txt",)) -> list[str]:
    for name in candidates:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return load_vocabulary(path)
    raise CheckpointError(f"{directory}: no {' or '.join(candidates)} (the WordPiece "
                          "vocabulary the checkpoint was trained with)")


# ---------------------------------------------------------------------------------------------
# Hugging Face folders.

_HF_IGNORED = {
    "embeddings.position_ids": "buffer (position indices), not a weight",
    "cls.predictions.decoder.weight": "tied to the word embedding (checked equal)",
    "cls.predictions.decoder.bias": "same tensor as cls.predictions.bias (checked equal)",
    "cls.seq_relationship.weight": "next-sentence-prediction head (not used by tfmask)",
    "cls.seq_relationship.bias": "next-sentence-prediction head (not used by tfmask)",
    "classifier.weight": "task head of a fine-tuned model (tfmask adds its own heads)",
    "classifier.bias": "task head of a fine-tuned model (tfmask adds its own heads)",
    "qa_outputs.weight": "task head of a fine-tuned model (tfmask adds its own heads)",
    "qa_outputs.bias": "task head of a fine-tuned model (tfmask adds its own heads)",
}
_HF_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def hf_to_canonical(name: str) -> tuple[str, bool]:
    """A Hugging Face BERT tensor name -> (canonical name, whether to transpose).

    `bert.` prefixes are dropped; `LayerNorm.weight`/`.gamma` -> `LayerNorm/gamma`;
    Linear `weight` [out, in] -> `kernel` (transposed to [in, out]).
    """
    if name.startswith("bert."):
        name = name[len("bert."):]
    if name == "cls.predictions.bias":
        return "cls/predictions/output_bias", False
    parts = name.split(".")
    head, leaf = parts[:-1], parts[-1]
    path = "/".join(head)
    path = re.sub(r"layer/(\d+)", r"layer_\1", path)
    if not path.startswith("cls/"):
        path = "bert/" + path
    if head and head[-1] == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta"}.get(leaf, leaf)
        return f"{path}/{leaf}", False
    if head and head[-1] in _HF_EMBEDDINGS and leaf == "weight":
        return path, False
    if leaf == "weight":
        return f"{path}/kernel", True
    return f"{path}/{leaf}", False


def _hf_state_dict(directory: str) -> tuple[dict[str, np.ndarray], str]:
    """Reads the weights file of a HF folder: safetensors (sharded too) or pytorch_model.bin."""
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(single) or os.path.exists(index):
        files = ([single] if os.path.exists(single) else sorted(
            {os.path.join(directory, f) for f in _read_json(index)["weight_map"].values()}))
        return _read_safetensors(files), files[0]
    bin_path = os.path.join(directory, "pytorch_model.bin")
    if os.path.exists(bin_path):
        try:
            import torch
        except ImportError:
            raise CheckpointError(
                f"{bin_path}: reading a PyTorch pickle needs torch, which is not installed. "
                "Install torch (CPU build) or convert the folder to model.safetensors") from None
        state = torch.load(bin_path, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() if v.is_floating_point() else v.numpy()
                for k, v in state.items()}, bin_path
    raise CheckpointError(f"{directory}: no model.safetensors, model.safetensors.index.json "
                          "or pytorch_model.bin")


def _read_safetensors(files: list[str]) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    tensors = {}
    for path in files:
        # framework="tf": NumPy has no bfloat16, TensorFlow does (bf16/fp16 files are cast).
        with safe_open(path, framework="tf") as fh:
            for key in fh.keys():
                value = fh.get_tensor(key)
                if value.dtype.is_floating:
                    value = value.numpy().astype(np.float32)
                else:
                    value = value.numpy()
                tensors[key] = value
    return tensors


def read_huggingface(directory: str) -> Checkpoint:
    """Reads a Hugging Face BERT folder (BertModel, BertForMaskedLM, BertForPreTraining)."""
    config_path = os.path.join(directory, "config.json")
    config = _read_json(config_path)
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"{config_path}: model_type {model_type!r} is not BERT; tfmask "
                              "imports BERT checkpoints")
    encoder_config = encoder_config_from_bert_config(config, config_path, _HF_ACTIVATIONS)
    state, weights_path = _hf_state_dict(directory)
    vocab = _vocab(directory)
    notes = [f"weights: {weights_path}"]
    tokenizer_config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(tokenizer_config_path):
        tokenizer_config = _read_json(tokenizer_config_path)
        lower_case = bool(tokenizer_config.get("do_lower_case", True))
        strip_accents = tokenizer_config.get("strip_accents")
        if strip_accents is not None and bool(strip_accents) != lower_case:
            notes.append(f"{tokenizer_config_path}: strip_accents={strip_accents} with "
                         f"do_lower_case={lower_case} is not reproduced: tfmask strips "
                         "accents exactly when it lower-cases")
    else:
        lower_case = infer_lower_case(vocab)
        notes.append(f"no tokenizer_config.json: lower_case={lower_case} inferred from "
                     "vocab.txt")

    tensors, names, skipped, shapes, unknown = {}, {}, {}, {}, []
    for key, value in state.items():
        bare = key[len("bert."):] if key.startswith("bert.") else key
        if bare in _HF_IGNORED:
            skipped[key] = _HF_IGNORED[bare]
            continue
        canonical, transpose = hf_to_canonical(key)
        if not _canonical_known(canonical):
            unknown.append(key)
            continue
        tensors[canonical] = np.ascontiguousarray(value.T) if transpose else value
        names[canonical] = key
        shapes[canonical] = tuple(value.shape)
    checkpoint = Checkpoint(directory, "huggingface", encoder_config, vocab, lower_case,
                            tensors, names, skipped, shapes, sorted(unknown), notes)
    _check_tied_decoder(checkpoint, state)
    return checkpoint


def _check_tied_decoder(checkpoint: Checkpoint, state: dict[str, np.ndarray]) -> None:
    """tfmask ties the MLM output projection to the word embedding: prove the source does."""
    def find(suffix):
        return next((k for k in state if k == suffix or k == "bert." + suffix), None)

    decoder = find("cls.predictions.decoder.weight")
    embedding = find("embeddings.word_embeddings.weight")
    if decoder and embedding and not np.array_equal(state[decoder], state[embedding]):
        raise CheckpointError(
            f"{checkpoint.source}: {decoder} differs from {embedding}; tfmask's MLM head is "
            "tied to the word embedding and cannot hold an untied decoder")
    decoder_bias, bias = find("cls.predictions.decoder.bias"), find("cls.predictions.bias")
    if decoder_bias and bias and not np.array_equal(state[decoder_bias], state[bias]):
        raise CheckpointError(f"{checkpoint.source}: {decoder_bias} differs from {bias}")


# ---------------------------------------------------------------------------------------------
# google-research/bert TensorFlow checkpoints.

_TF_OPTIMIZER = re.compile(r"(/adam_[mv]$|^global_step$|^bad_steps$|^good_steps$|"
                           r"^loss_scale$|^current_loss_scale$)")
_TF_IGNORED = {
    "cls/seq_relationship/output_weights": "next-sentence-prediction head (not used by tfmask)",
    "cls/seq_relationship/output_bias": "next-sentence-prediction head (not used by tfmask)",
}


def _tf_checkpoint_prefix(directory: str) -> str:
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
    encoder_config = encoder_config_from_bert_config(_read_json(config_path), config_path,
                                                     _TF_ACTIVATIONS)
    prefix = _tf_checkpoint_prefix(directory)
    reader = tf.train.load_checkpoint(prefix)
    tensors, names, skipped, unknown = {}, {}, {}, []
    for name in sorted(reader.get_variable_to_shape_map()):
        if _TF_OPTIMIZER.search(name):
            skipped[name] = "optimizer state"
        elif name in _TF_IGNORED:
            skipped[name] = _TF_IGNORED[name]
        elif _canonical_known(name):
            tensors[name] = np.asarray(reader.get_tensor(name), np.float32)
            names[name] = name
        else:
            unknown.append(name)
    vocab = _vocab(directory)
    lower_case = infer_lower_case(vocab)
    notes = [f"weights: {prefix}",
             f"lower_case={lower_case} inferred from vocab.txt (upper-case tokens "
             f"{'absent' if lower_case else 'present'})",
             "activation: google-research/bert's gelu is the tanh approximation"]
    return Checkpoint(directory, "tf_checkpoint", encoder_config, vocab, lower_case, tensors,
                      names, skipped, unknown=unknown, notes=notes)


# ---------------------------------------------------------------------------------------------
# keras-hub presets.

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

    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
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


# ---------------------------------------------------------------------------------------------
# Source resolution.

_HF_PATTERNS = ["config.json", "model.safetensors", "model.safetensors.index.json",
                "model-*.safetensors", "pytorch_model.bin", "vocab.txt",
                "tokenizer_config.json"]


def download_huggingface(repo_id: str) -> str:
    """Downloads the files of a HF BERT repository (needs network and `huggingface_hub`)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"hf://{repo_id}: downloading needs the huggingface_hub package "
                              "(pip install huggingface_hub), or pass a local folder") from None
    try:
        # Safetensors only when the repository has it: a .bin would need torch.
        return snapshot_download(repo_id, allow_patterns=_HF_PATTERNS)
    except Exception as e:  # noqa: BLE001  network, auth and not-found errors alike
        raise CheckpointError(
            f"hf://{repo_id}: could not download from the Hugging Face Hub "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Offline? "
            "Download the folder on a connected machine and pass its path") from None


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
        return _read_keras_hub_by_name(source)
    raise CheckpointError(f"{source}: no such folder (and not an hf:// handle or a keras-hub "
                          "preset name)")


def _read_keras_hub_by_name(name: str) -> Checkpoint:
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
    from tfmask.encoder import BertEncoder
    from tfmask.heads import MaskedLM

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
    if os.path.exists(os.path.join(run_dir, "encoder.keras")) and not overwrite:
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
    save_vocabulary(checkpoint.vocab, os.path.join(run_dir, "vocab.txt"))
    experiment = Experiment(encoder=checkpoint.encoder_config, tokenizer=TokenizerConfig(
        vocab=None, vocabulary_size=len(checkpoint.vocab), lower_case=checkpoint.lower_case))
    config: dict[str, Any] = {"encoder": experiment.to_dict()["encoder"],
                              "tokenizer": experiment.to_dict()["tokenizer"],
                              "source": {"path": source, "format": checkpoint.format}}
    with open(os.path.join(run_dir, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    encoder.save(os.path.join(run_dir, "encoder.keras"))
    stale = os.path.join(run_dir, "masked_lm.keras")
    if masked_lm is not None:
        masked_lm.save(stale)
    elif os.path.exists(stale):
        os.remove(stale)
    report["run_dir"] = run_dir
    with open(os.path.join(run_dir, "import_report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    return report
