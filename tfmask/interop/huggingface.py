"""Hugging Face BERT folders -> the canonical checkpoint form.

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
