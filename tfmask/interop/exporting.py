"""`export_weights`: a tfmask run's weights written for another framework, then checked.

    format     files                                          loads as
    hf         config.json, model.safetensors, vocab.txt,     transformers BertModel,
               tokenizer_config.json                          BertForMaskedLM (tied decoder),
                                                              BertForTokenClassification,
                                                              BertForSequenceClassification
    keras-hub  config.json, metadata.json, model.weights.h5,  keras_hub.models.BertBackbone,
               tokenizer.json, assets/tokenizer/...           BertTokenizer (.from_preset);
               (+ task.json, task.weights.h5)                 BertTextClassifier

Which head is written follows the run (`export_plan.resolve_head`). The tensors come out of
the run's Keras models along the import tables read backwards (`canonical.to_canonical`),
and every export is checked before it is published:

- **round trip**: the folder is read back by the reader `tfmask import` runs
  (`read_huggingface`, `read_keras_hub`); every tensor must come back bit-identical (the
  classifier too), with the run's vocabulary, casing and encoder shape;
- **GELU**: the HF config records the run's form (`hidden_act` "gelu" = exact erf, "gelu_new"
  = tanh), which transformers computes and the reader maps back. keras-hub's `BertBackbone`
  always computes the tanh form: the export runs the preset's own model on a few sentences
  (a pair among them) against the tfmask encoder and reports the largest difference, both
  against the run's encoder and against the same weights with the tanh form (the function
  keras-hub computes; ~1e-6). Importing the preset back gives `gelu_approximate`.

The folder is written under a hidden name beside `out` and renamed into place (`--force`
replaces an existing `out` only once the new one is complete).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import numpy as np

from tfmask import runs
from tfmask.interop import export_plan
from tfmask.interop.canonical import CheckpointError, to_canonical
from tfmask.interop.huggingface import (HF_ARCHITECTURES, _state_dict, read_huggingface,
                                        write_huggingface)
from tfmask.interop.keras_hub import read_keras_hub, write_keras_hub

#: Sentences the keras-hub parity check runs: accents, CJK, emoji, a long word, and a pair.
PROBE_TEXTS = [("The European lobster is a species of clawed lobster .", None),
               ("Café au lait in 東京 , with emoji 🙂 and antidisestablishmentarianism .", None),
               ("A man is playing a guitar .", "Somebody plays music on stage .")]


def _load_run(run_dir: str, head: str):
    """(encoder, masked_lm or None, classifier model or None, experiment or None,
    tokenizer) of a run, for the head being written."""
    if head in ("token_classification", "sequence_classification") or (
            os.path.exists(os.path.join(run_dir, "model.keras")) and head == "none"):
        experiment, model, tokenizer = runs.load_finetuned(run_dir)
        return model.encoder, None, model, experiment, tokenizer
    tokenizer = runs.load_tokenizer(run_dir)
    if head == "masked_lm":
        masked_lm = runs.load_masked_lm(run_dir)
        return masked_lm.encoder, masked_lm, None, None, tokenizer
    return runs.load_encoder(run_dir), None, None, None, tokenizer


def _probe_inputs(tokenizer, max_sequence_length: int) -> dict[str, np.ndarray]:
    """`PROBE_TEXTS` as encoder inputs, laid out by the training pipeline's builder."""
    import tensorflow as tf

    from tfmask.text.packing import build_sequences

    def pieces(texts):
        return tokenizer.tokenize_words(tf.constant(texts)).merge_dims(1, 2)

    rows = []
    for first, second in PROBE_TEXTS:
        x = build_sequences(pieces([first]), None if second is None else pieces([second]),
                            cls_token_id=tokenizer.cls_token_id,
                            sep_token_id=tokenizer.sep_token_id,
                            pad_token_id=tokenizer.pad_token_id,
                            max_sequence_length=min(max_sequence_length, 64),
                            padding="max_length")
        rows.append({k: v.numpy() for k, v in x.items()})
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def _max_difference(a: dict, b: dict, mask: np.ndarray) -> float:
    keep = mask.astype(bool)
    return float(max(np.abs(np.asarray(a["sequence_output"])[keep]
                            - np.asarray(b["sequence_output"])[keep]).max(),
                     np.abs(np.asarray(a["pooled_output"])
                            - np.asarray(b["pooled_output"])).max()))


def _keras_hub_parity(directory: str, encoder, tokenizer) -> dict:
    """The written preset's own `BertBackbone` against the tfmask encoder on `PROBE_TEXTS`."""
    import keras_hub

    from tfmask.model.encoder import BertEncoder

    backbone = keras_hub.models.BertBackbone.from_preset(directory)
    inputs = _probe_inputs(tokenizer, encoder.max_sequence_length)
    theirs = backbone(inputs, training=False)
    tanh = BertEncoder.from_encoder_config(
        dataclasses.replace(encoder.encoder_config(), activation="gelu_approximate"))
    tanh.set_weights(encoder.get_weights())
    theirs_ids = keras_hub.models.BertTokenizer.from_preset(directory)(
        [t for t, _ in PROBE_TEXTS])
    rows = theirs_ids.to_list() if hasattr(theirs_ids, "to_list") else theirs_ids
    ids = [[int(i) for i in row] for row in rows]
    ours = [tokenizer.tokenize_words([t]).merge_dims(1, 2).to_list()[0]
            for t, _ in PROBE_TEXTS]
    return {"texts": len(PROBE_TEXTS),
            "max_abs_difference": _max_difference(encoder(inputs, training=False), theirs,
                                                  inputs["padding_mask"]),
            "max_abs_difference_tanh_gelu": _max_difference(tanh(inputs, training=False),
                                                            theirs, inputs["padding_mask"]),
            "run_activation": encoder.activation,
            "same_token_ids": [list(a) == list(b) for a, b in zip(ids, ours)]}


def _verify(directory: str, fmt: str, tensors: dict, classifier, encoder_config, vocab,
            lower_case: bool) -> int:
    """Reads the written folder back as `tfmask import` would; raises unless every tensor,
    the vocabulary, the casing and the encoder shape come back unchanged. Returns the number
    of tensors compared."""
    checkpoint = read_huggingface(directory) if fmt == "hf" else read_keras_hub(directory)
    problems = []
    if set(checkpoint.tensors) != set(tensors):
        problems.append(f"tensors {sorted(set(checkpoint.tensors) ^ set(tensors))} differ")
    problems += [f"{name} is not bit-identical" for name in sorted(tensors)
                 if name in checkpoint.tensors
                 and not np.array_equal(checkpoint.tensors[name], tensors[name])]
    if checkpoint.vocab != list(vocab):
        problems.append("the vocabulary differs")
    if checkpoint.lower_case != lower_case:
        problems.append(f"lower_case {checkpoint.lower_case} != {lower_case}")
    expected = encoder_config if fmt == "hf" else dataclasses.replace(
        encoder_config, activation="gelu_approximate")  # keras-hub's own
    if checkpoint.encoder_config != expected:
        problems.append(f"encoder {checkpoint.encoder_config} != {expected}")
    count = len(tensors)
    if classifier is not None:
        kernel, bias = classifier
        if fmt == "hf":
            state, _ = _state_dict(directory)
            back = (state["classifier.weight"].T, state["classifier.bias"])
        else:
            import keras_hub

            task = keras_hub.models.BertTextClassifier.from_preset(directory)
            back = (task.output_dense.kernel.numpy(), task.output_dense.bias.numpy())
        if not (np.array_equal(back[0], kernel) and np.array_equal(back[1], bias)):
            problems.append("the classifier is not bit-identical")
        count += 2
    if problems:
        raise CheckpointError(f"{directory}: the written {fmt} folder does not read back as "
                              f"the run: " + "; ".join(problems))
    return count


def export_weights(run_dir: str, fmt: str, out: str, head: str = "auto",
                   overwrite: bool = False) -> dict:
    """Writes `run_dir`'s weights to `out` as a Hugging Face folder (`fmt="hf"`) or a
    keras-hub preset (`fmt="keras-hub"`); see the module docstring.

    Args:
      run_dir: a finished tfmask pretrain, import or finetune run.
      fmt: "hf" or "keras-hub".
      out: the folder to write; it must not exist unless `overwrite`.
      head: "auto" (the run's own head), "none" (the encoder only), "masked_lm" or
        "classifier" (`export_plan.resolve_head`).
      overwrite: replace an existing `out`.

    Returns:
      a report: `format`, `out`, `head`, `classes` (what loads it), `tensors` (read back
      bit-identical), `activation`, `notes`, and `parity` for keras-hub.
    """
    written_head = export_plan.resolve_head(run_dir, fmt, head)
    export_plan.check_out(out, overwrite)
    encoder, masked_lm, model, experiment, tokenizer = _load_run(run_dir, written_head)
    config = encoder.encoder_config()
    lower_case = runs.tokenizer_config(run_dir).lower_case
    tensors = to_canonical(encoder, masked_lm if written_head == "masked_lm" else None)
    classifier, labels, dropout = None, None, None
    if model is not None and written_head != "none":
        classifier = (np.asarray(model.logits_dense.kernel.numpy(), np.float32),
                      np.asarray(model.logits_dense.bias.numpy(), np.float32))
        labels, dropout = list(experiment.labels), float(model.dropout)
    notes = []
    if os.path.exists(os.path.join(run_dir, "model.keras")) and written_head == "none":
        notes.append("the classifier is not written (--head none, or keras-hub has no "
                     "token-classification task): the encoder only")
    elif os.path.exists(os.path.join(run_dir, "masked_lm.keras")) and written_head == "none":
        notes.append("the MLM head is not written" + (
            " (keras-hub's BertMaskedLM head uses LayerNorm epsilon 1e-5, not BERT's 1e-12)"
            if fmt == "keras-hub" else ""))

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-weights-", dir=parent)
    try:
        report = {"format": fmt, "out": out, "head": written_head}
        if fmt == "hf":
            hf = write_huggingface(tmp, tensors, config, tokenizer.vocab, lower_case,
                                   written_head, classifier, labels, dropout)
            report["classes"] = [HF_ARCHITECTURES[written_head]] + (
                ["BertModel"] if written_head != "none" else [])
            report["activation"] = {"run": config.activation, "hidden_act": hf["hidden_act"]}
            if written_head in ("masked_lm", "token_classification"):
                notes.append("the pooler is written too (the class ignores it; BertModel and "
                             "tfmask import read it)")
        else:
            write_keras_hub(tmp, tensors, config, tokenizer.vocab, lower_case, classifier,
                            dropout if dropout is not None else 0.1)
            report["classes"] = ["BertBackbone", "BertTokenizer"] + (
                ["BertTextClassifier"] if classifier is not None else [])
            report["activation"] = {"run": config.activation, "keras_hub": "gelu_approximate"}
            report["parity"] = _keras_hub_parity(tmp, encoder, tokenizer)
            if config.activation != "gelu_approximate":
                notes.append(f"keras-hub's BertBackbone computes the tanh GELU; this run uses "
                             f"{config.activation}: outputs differ by up to "
                             f"{report['parity']['max_abs_difference']:.2e} on the probe "
                             "sentences (tfmask import of the preset reads gelu_approximate)")
        report["tensors"] = _verify(tmp, fmt, tensors, classifier, config, tokenizer.vocab,
                                    lower_case)
        report["notes"] = notes
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _publish(tmp: str, out: str, overwrite: bool) -> None:
    """Renames the complete `tmp` to `out`; an existing `out` (with `overwrite`) is moved
    aside first and removed once the new one is in place."""
    old = None
    if os.path.exists(out):
        export_plan.check_out(out, overwrite)
        old = tempfile.mkdtemp(prefix=".tmp-replaced-", dir=os.path.dirname(tmp))
        os.rename(out, os.path.join(old, "previous"))
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
