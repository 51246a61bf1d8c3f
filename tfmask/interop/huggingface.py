"""Hugging Face BERT folders -> the canonical checkpoint form, and back (`write_huggingface`).

A folder holds `config.json`, the weights (`model.safetensors`, sharded safetensors with
`model.safetensors.index.json`, or `pytorch_model.bin`, which needs torch), `vocab.txt` and
optionally `tokenizer_config.json`; `hf://ORG/NAME` downloads one from the Hub. Names map as

    bert.encoder.layer.0.attention.self.query.weight  (Linear [out, in]: transposed)
      -> bert/encoder/layer_0/attention/self/query/kernel  ([in, out])
    bert.encoder.layer.0.output.LayerNorm.weight (or .gamma)
      -> bert/encoder/layer_0/output/LayerNorm/gamma
    cls.predictions.bias
      -> cls/predictions/output_bias

The `position_ids` buffer, the next-sentence head and task heads are skipped with a reason;
the MLM decoder is skipped after checking that it equals the word embedding (tfmask ties the
two).
"""

from __future__ import annotations

import os
import re

import numpy as np

from tfmask.interop.canonical import (Checkpoint, CheckpointError,
                                      encoder_config_from_bert_config, infer_lower_case,
                                      is_canonical, read_json, read_vocab)

#: Activation names in BERT config files -> `BertEncoder` activation.
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate", "gelu_fast": "gelu_approximate",
                "relu": "relu"}
#: Known tensors that are not imported (names without the `bert.` prefix) -> why.
_IGNORED = {
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
#: Embedding tables: their `weight` is `[rows, hidden]` as in the canonical form (no transpose).
_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


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
    if head and head[-1] in _EMBEDDINGS and leaf == "weight":
        return path, False
    if leaf == "weight":
        return f"{path}/kernel", True
    return f"{path}/{leaf}", False


def _state_dict(directory: str) -> tuple[dict[str, np.ndarray], str]:
    """Reads the weights file of a HF folder: safetensors (sharded too) or pytorch_model.bin."""
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(single) or os.path.exists(index):
        files = ([single] if os.path.exists(single) else sorted(
            {os.path.join(directory, f) for f in read_json(index)["weight_map"].values()}))
        return _read_safetensors(files), files[0]
    bin_path = os.path.join(directory, "pytorch_model.bin")
    if os.path.exists(bin_path):
        try:
            import torch
        except ImportError:
            raise CheckpointError(
                f"{bin_path}: reading a PyTorch pickle needs torch, which is not installed. "
                "Install torch (CPU build) or convert the folder to model.safetensors") from None
        try:
            # weights_only: the pickle may hold tensors and plain containers, never code.
            state = torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  pickle, zip and torch errors alike
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "weights_only" in str(e) or "Weights only load failed" in str(e):
                reason = ("it holds Python objects besides tensors, which tfmask does not "
                          "unpickle (torch.load weights_only=True)")
            raise CheckpointError(f"{bin_path}: cannot be read: {reason}") from None
        if not isinstance(state, dict) or not all(hasattr(v, "numpy") for v in state.values()):
            raise CheckpointError(f"{bin_path}: not a state dict of tensors")
        return {k: v.float().numpy() if v.is_floating_point() else v.numpy()
                for k, v in state.items()}, bin_path
    raise CheckpointError(f"{directory}: no model.safetensors, model.safetensors.index.json "
                          "or pytorch_model.bin")


def _read_safetensors(files: list[str]) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    tensors = {}
    for path in files:
        if not os.path.exists(path):
            raise CheckpointError(f"{path}: missing (named by model.safetensors.index.json)")
        try:
            # framework="tf": NumPy has no bfloat16, TensorFlow does (bf16/fp16 are cast).
            with safe_open(path, framework="tf") as fh:
                for key in fh.keys():
                    value = fh.get_tensor(key)
                    if value.dtype.is_floating:
                        value = value.numpy().astype(np.float32)
                    else:
                        value = value.numpy()
                    tensors[key] = value
        except Exception as e:  # noqa: BLE001  safetensors' own error type, and OS errors
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path}: damaged safetensors file ({reason}; "
                                  f"{os.path.getsize(path):,} bytes): truncated or not "
                                  "safetensors; download it again") from None
    return tensors


def read_huggingface(directory: str) -> Checkpoint:
    """Reads a Hugging Face BERT folder (BertModel, BertForMaskedLM, BertForPreTraining)."""
    config_path = os.path.join(directory, "config.json")
    config = read_json(config_path)
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"{config_path}: model_type {model_type!r} is not BERT; tfmask "
                              "imports BERT checkpoints")
    encoder_config = encoder_config_from_bert_config(config, config_path, _ACTIVATIONS)
    state, weights_path = _state_dict(directory)
    vocab = read_vocab(directory)
    notes = [f"weights: {weights_path}"]
    tokenizer_config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(tokenizer_config_path):
        tokenizer_config = read_json(tokenizer_config_path)
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
        if bare in _IGNORED:
            skipped[key] = _IGNORED[bare]
            continue
        canonical, transpose = hf_to_canonical(key)
        if not is_canonical(canonical):
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
# hf://ORG/NAME: download the folder.

_DOWNLOAD_PATTERNS = ["config.json", "model.safetensors", "model.safetensors.index.json",
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
        # Both weight formats are fetched when present; the reader prefers safetensors (a
        # pytorch_model.bin needs torch).
        return snapshot_download(repo_id, allow_patterns=_DOWNLOAD_PATTERNS)
    except Exception as e:  # noqa: BLE001  network, auth and not-found errors alike
        raise CheckpointError(
            f"hf://{repo_id}: could not download from the Hugging Face Hub "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Offline? "
            "Download the folder on a connected machine and pass its path") from None


# ---------------------------------------------------------------------------------------------
# Writing: canonical tensors -> a Hugging Face folder.

#: `BertEncoder` activation -> the `hidden_act` written: each maps back to the same activation
#: through `_ACTIVATIONS`, and computes the same function in transformers ("gelu" is the exact
#: erf form there, "gelu_new" the tanh form).
_HIDDEN_ACTS = {"gelu": "gelu", "gelu_approximate": "gelu_new", "relu": "relu"}
#: The head a written folder holds -> its transformers class.
HF_ARCHITECTURES = {"none": "BertModel", "masked_lm": "BertForMaskedLM",
                    "token_classification": "BertForTokenClassification",
                    "sequence_classification": "BertForSequenceClassification"}


def canonical_to_hf(canonical: str) -> tuple[str, bool]:
    """A canonical name -> (its Hugging Face name, `bert.`-prefixed, and whether to transpose).

    The inverse of `hf_to_canonical`, which checks every name it gives:

        bert/encoder/layer_0/attention/self/query/kernel  ([in, out])
          -> bert.encoder.layer.0.attention.self.query.weight  ([out, in]: transposed)
        bert/embeddings/LayerNorm/gamma -> bert.embeddings.LayerNorm.weight
        cls/predictions/output_bias     -> cls.predictions.bias
    """
    parts = canonical.split("/")
    path = re.sub(r"layer_(\d+)", r"layer.\1", ".".join(parts[:-1]))
    leaf, transpose = parts[-1], False
    if canonical == "cls/predictions/output_bias":
        name = "cls.predictions.bias"
    elif leaf in _EMBEDDINGS:
        name = f"{path}.{leaf}.weight"
    elif leaf in ("gamma", "beta"):
        name = f"{path}.{'weight' if leaf == 'gamma' else 'bias'}"
    else:
        name, transpose = f"{path}.{'weight' if leaf == 'kernel' else leaf}", leaf == "kernel"
    if hf_to_canonical(name) != (canonical, transpose):  # the two directions disagree: a bug
        raise RuntimeError(f"{canonical} -> {name} does not map back")
    return name, transpose


def hf_config(encoder_config, head: str, pad_token_id: int, labels=None,
              classifier_dropout: float | None = None) -> dict:
    """The `config.json` of a written folder: the encoder's shape, the GELU form as
    `hidden_act`, and for a classifier its labels (`id2label`, `label2id`)."""
    c = encoder_config
    if c.activation not in _HIDDEN_ACTS:
        raise CheckpointError(f"activation {c.activation!r} has no Hugging Face name")
    config = {
        "architectures": [HF_ARCHITECTURES[head]], "model_type": "bert",
        "vocab_size": c.vocabulary_size, "hidden_size": c.hidden_dim,
        "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_dim, "hidden_act": _HIDDEN_ACTS[c.activation],
        "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.dropout,
        "max_position_embeddings": c.max_sequence_length, "type_vocab_size": c.num_segments,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute", "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    if labels is not None:
        config["id2label"] = {str(i): name for i, name in enumerate(labels)}
        config["label2id"] = {name: i for i, name in enumerate(labels)}
        config["classifier_dropout"] = classifier_dropout
        if head == "sequence_classification":
            config["problem_type"] = "single_label_classification"
    return config


def write_huggingface(directory: str, tensors: dict[str, np.ndarray], encoder_config,
                      vocab: list[str], lower_case: bool, head: str = "none",
                      classifier: tuple[np.ndarray, np.ndarray] | None = None,
                      labels: list[str] | None = None,
                      classifier_dropout: float | None = None) -> dict:
    """Writes `config.json`, `model.safetensors`, `vocab.txt` and `tokenizer_config.json`.

    Args:
      directory: an existing, empty folder.
      tensors: canonical name -> array (`canonical.to_canonical`), MLM head included for
        `head="masked_lm"`.
      encoder_config: the encoder's `EncoderConfig`.
      vocab, lower_case: the tokenizer (`vocab.txt`; `do_lower_case` and `strip_accents`,
        which tfmask ties together).
      head: a key of `HF_ARCHITECTURES`. "none" writes `BertModel` names (no `bert.`
        prefix); the others the prefixed names of the task classes. The pooler is written
        in every case (a task class that has none ignores it), so reading the folder back
        gives every tensor of the run.
      classifier: `(kernel [H, C], bias [C])` of a token or sequence classifier.
      labels: its class names, index = id (`id2label`).
      classifier_dropout: the dropout before the classifier (recorded in the config).

    Returns:
      the `config.json` written.
    """
    import json

    from safetensors.numpy import save_file

    from tfmask.text.tokenization import save_vocabulary

    state = {}
    for canonical, value in tensors.items():
        name, transpose = canonical_to_hf(canonical)
        if head == "none":
            name = name[len("bert."):] if name.startswith("bert.") else name
        state[name] = np.ascontiguousarray(value.T if transpose else value, np.float32)
    if head in ("token_classification", "sequence_classification"):
        if classifier is None or labels is None:
            raise ValueError(f"head {head!r} needs the classifier weights and labels")
        kernel, bias = classifier
        state["classifier.weight"] = np.ascontiguousarray(kernel.T, np.float32)  # [C, H]
        state["classifier.bias"] = np.ascontiguousarray(bias, np.float32)
    save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    config = hf_config(encoder_config, head, vocab.index("[PAD]") if "[PAD]" in vocab else 0,
                       labels if classifier is not None else None, classifier_dropout)
    save_vocabulary(vocab, os.path.join(directory, "vocab.txt"))
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer", "do_lower_case": lower_case,
        "strip_accents": lower_case, "tokenize_chinese_chars": True,
        "model_max_length": encoder_config.max_sequence_length,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]",
    }
    for name, value in (("config.json", config), ("tokenizer_config.json", tokenizer_config)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
    return config
