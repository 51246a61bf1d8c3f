"""`tfmask export-weights`: Hugging Face folders and keras-hub presets written from runs, read
back bit-identical by `tfmask import`, loaded by keras-hub's own classes, and (optional
oracle, `TFMASK_HF_PYTHON`) by Hugging Face transformers in a separate environment."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tfmask import cli, runs
from tfmask.interop import export_plan, export_weights, import_checkpoint
from tfmask.interop.canonical import MLM_HEAD_TABLE, encoder_table
from tfmask.interop.huggingface import canonical_to_hf, hf_to_canonical
from tfmask.model.encoder import BertEncoder
from tfmask.text.examples import load_split
from tfmask.train.evaluation import Evaluator

ORACLE = os.path.join(os.path.dirname(__file__), "hf_oracle.py")


def test_hf_names_are_the_readers_names_backwards():
    for canonical, _, _ in encoder_table(3) + MLM_HEAD_TABLE:
        name, transpose = canonical_to_hf(canonical)
        assert hf_to_canonical(name) == (canonical, transpose)
    assert canonical_to_hf("bert/encoder/layer_11/attention/output/LayerNorm/gamma") == (
        "bert.encoder.layer.11.attention.output.LayerNorm.weight", False)
    assert canonical_to_hf("bert/pooler/dense/kernel") == ("bert.pooler.dense.weight", True)


def _weights(model) -> dict[str, np.ndarray]:
    return {w.path: np.asarray(w.numpy()) for w in model.weights}


def assert_bit_identical(a, b):
    wa, wb = _weights(a), _weights(b)
    assert sorted(wa) == sorted(wb)
    different = [k for k in wa if not np.array_equal(wa[k], wb[k])]
    assert not different, f"not bit-identical: {different}"


@pytest.fixture(scope="module")
def written(pretraining_run, ner_run, pair_run, tmp_path_factory):
    """Every export the tests read, written once."""
    root = tmp_path_factory.mktemp("weights")
    jobs = {"mlm_hf": (pretraining_run[0], "hf"), "mlm_kh": (pretraining_run[0], "keras-hub"),
            "ner_hf": (ner_run[0], "hf"), "pair_hf": (pair_run[0], "hf"),
            "pair_kh": (pair_run[0], "keras-hub")}
    return {key: (str(root / key), export_weights(run, fmt, str(root / key)))
            for key, (run, fmt) in jobs.items()}


def test_pretraining_run_to_hf_and_back_is_bit_identical(written, pretraining_run, tmp_path):
    folder, report = written["mlm_hf"]
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors",
                                          "tokenizer_config.json", "vocab.txt"]
    config = json.load(open(os.path.join(folder, "config.json")))
    assert config["architectures"] == ["BertForMaskedLM"] and config["hidden_act"] == "gelu"
    assert report["head"] == "masked_lm" and report["tensors"] == 44  # 39 + MLM head 5
    back = str(tmp_path / "back")
    imported = import_checkpoint(folder, back)
    assert imported["masked_lm_head"] and imported["encoder"]["activation"] == "gelu"
    assert_bit_identical(runs.load_encoder(back), runs.load_encoder(pretraining_run[0]))
    assert_bit_identical(runs.load_masked_lm(back), runs.load_masked_lm(pretraining_run[0]))
    assert open(os.path.join(back, "vocab.txt")).read() == open(
        os.path.join(pretraining_run[0], "vocab.txt")).read()


def test_keras_hub_preset_loads_computes_tanh_gelu_and_imports_back(written, pretraining_run,
                                                                    tmp_path):
    import keras_hub

    folder, report = written["mlm_kh"]
    backbone = keras_hub.models.BertBackbone.from_preset(folder)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(folder)
    encoder = runs.load_encoder(pretraining_run[0])
    assert list(tokenizer.get_vocabulary()) == list(runs.load_tokenizer(pretraining_run[0]).vocab)
    tanh = BertEncoder.from_encoder_config(dataclasses.replace(encoder.encoder_config(),
                                                               activation="gelu_approximate"))
    tanh.set_weights(encoder.get_weights())
    rng = np.random.default_rng(0)
    ids = rng.integers(5, encoder.vocabulary_size, (2, 12)).astype(np.int32)
    inputs = {"token_ids": ids, "segment_ids": (np.arange(12) >= 6).astype(np.int32)[None]
              .repeat(2, 0), "padding_mask": np.ones_like(ids)}
    theirs = backbone(inputs)
    np.testing.assert_allclose(tanh(inputs)["sequence_output"], theirs["sequence_output"],
                               atol=1e-4)
    np.testing.assert_allclose(tanh(inputs)["pooled_output"], theirs["pooled_output"],
                               atol=1e-4)
    assert report["parity"]["max_abs_difference_tanh_gelu"] <= 1e-4
    assert report["head"] == "none" and "MLM head is not written" in report["notes"][0]
    back = str(tmp_path / "back")
    assert import_checkpoint(folder, back)["encoder"]["activation"] == "gelu_approximate"
    assert_bit_identical(runs.load_encoder(back), encoder)


def test_ner_run_is_a_token_classifier_with_its_labels(written, ner_run):
    folder, report = written["ner_hf"]
    config = json.load(open(os.path.join(folder, "config.json")))
    labels = runs.load_labels(ner_run[0])
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(labels)}
    from safetensors.numpy import load_file

    state = load_file(os.path.join(folder, "model.safetensors"))
    model = runs.load_finetuned(ner_run[0])[1]
    np.testing.assert_array_equal(state["classifier.weight"], model.logits_dense.kernel.numpy().T)
    assert report["tensors"] == 41  # 39 encoder tensors (2 layers) + the classifier's 2


def test_pair_classifier_as_keras_hub_text_classifier(written, pair_run):
    import keras_hub

    folder, report = written["pair_kh"]
    assert report["classes"] == ["BertBackbone", "BertTokenizer", "BertTextClassifier"]
    task = keras_hub.models.BertTextClassifier.from_preset(folder, preprocessor=None)
    model = runs.load_finetuned(pair_run[0])[1]
    np.testing.assert_array_equal(task.output_dense.kernel.numpy(),
                                  model.logits_dense.kernel.numpy())
    config = json.load(open(os.path.join(written["pair_hf"][0], "config.json")))
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}


def test_bad_requests_are_one_line_errors(ner_run, pretraining_run, tmp_path, capsys):
    def error(argv):
        with pytest.raises(SystemExit) if "onnx" in argv else _nothing():
            code = cli.main(argv)
            assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    assert "has no MLM head (no masked_lm.keras), so it cannot be written as " \
           "BertForMaskedLM" in error(["export-weights", ner_run[0], "--format", "hf",
                                       "--head", "masked_lm", "--out", str(tmp_path / "a")])
    assert "not a fine-tuned run (no model.keras): no classifier" in error(
        ["export-weights", pretraining_run[0], "--format", "hf", "--head", "classifier",
         "--out", str(tmp_path / "a")])
    assert "keras-hub has no token-classification task" in error(
        ["export-weights", ner_run[0], "--format", "keras-hub", "--head", "classifier",
         "--out", str(tmp_path / "a")])
    assert "invalid choice: 'onnx' (choose from 'hf', 'keras-hub')" in error(
        ["export-weights", ner_run[0], "--format", "onnx", "--out", str(tmp_path / "a")])
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert "exists; choose a new folder or pass --force" in error(
        ["export-weights", pretraining_run[0], "--format", "hf", "--out", str(out)])
    assert (out / "keep.txt").exists() and not os.path.exists(tmp_path / "a")
    assert cli.main(["export-weights", pretraining_run[0], "--format", "hf", "--head", "none",
                     "--out", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert '"tensors": 39' in printed and '"head": "none"' in printed
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors",
                                       "tokenizer_config.json", "vocab.txt"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    with pytest.raises(export_plan.ExportPlanError, match="no such run directory"):
        export_plan.resolve_head(str(tmp_path / "missing"), "hf")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- optional oracle: Hugging Face transformers in its own environment ------------------------

@pytest.fixture(scope="module")
def hf_python():
    python = os.environ.get("TFMASK_HF_PYTHON")
    if not python:
        pytest.skip("set TFMASK_HF_PYTHON to a python with torch and transformers (optional "
                    "oracle: transformers loads the written folders)")
    return python


def _oracle(python, tmp_path, request: dict) -> dict:
    path = tmp_path / f"request_{request['class']}.json"
    path.write_text(json.dumps(request))
    out = tmp_path / f"out_{request['class']}.npz"
    subprocess.run([python, ORACLE, str(path), str(out)], check=True, capture_output=True)
    with np.load(out) as data:
        return {k: data[k] for k in data}


def _as_lists(x: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in x.items()}


def test_transformers_masked_lm_and_bert_model_match_tfmask(written, pretraining_run, hf_python,
                                                            tmp_path):
    folder, _ = written["mlm_hf"]
    masked_lm = runs.load_masked_lm(pretraining_run[0])
    rng = np.random.default_rng(1)
    ids = rng.integers(5, masked_lm.encoder.vocabulary_size, (2, 10)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    inputs = {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    positions = np.array([[1, 4], [2, 6]], np.int32)
    hf = _oracle(hf_python, tmp_path, {"folder": folder, "class": "BertForMaskedLM",
                                       **_as_lists(inputs)})
    ours = masked_lm({**inputs, "mask_positions": positions}).numpy()
    theirs = np.take_along_axis(hf["logits"], positions[..., None], axis=1)
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    base = _oracle(hf_python, tmp_path, {"folder": folder, "class": "BertModel",
                                         **_as_lists(inputs)})
    encoded = masked_lm.encoder(inputs)
    keep = mask.astype(bool)
    np.testing.assert_allclose(base["sequence_output"][keep],
                               encoded["sequence_output"].numpy()[keep], atol=1e-4)
    np.testing.assert_allclose(base["pooled_output"], encoded["pooled_output"].numpy(),
                               atol=1e-4)


def test_transformers_tags_held_out_sentences_as_tfmask_evaluate(written, ner_run, data_dir,
                                                                 hf_python, tmp_path):
    folder, _ = written["ner_hf"]
    experiment, model, tokenizer = runs.load_finetuned(ner_run[0])
    examples, _ = load_split(experiment, data_dir["ner_valid"], labels=experiment.labels)
    evaluator = Evaluator("ner", examples, experiment.labels, tokenizer,
                          experiment.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)  # what `tfmask evaluate` scores
    hf = _oracle(hf_python, tmp_path, {"folder": folder, "class": "BertForTokenClassification",
                                       "words": examples.texts})
    assert hf["id2label"].tolist() == experiment.labels
    assert hf["word_counts"].tolist() == [len(w) for w in examples.texts]
    ours = [t for sentence in predicted for t in sentence]
    assert hf["word_tags"].tolist() == ours


def test_transformers_sentence_pair_logits_match_tfmask(written, pair_run, data_dir, hf_python,
                                                        tmp_path):
    from tfmask.text import finetuning_data

    folder, _ = written["pair_hf"]
    experiment, model, tokenizer = runs.load_finetuned(pair_run[0])
    examples, _ = load_split(experiment, data_dir["pairs_dev"], labels=experiment.labels)
    texts, pairs = examples.texts[:16], examples.text_pairs[:16]
    ds = finetuning_data.classification_dataset(texts, examples.label_ids[:16], tokenizer,
                                                experiment.data.max_sequence_length, 16,
                                                text_pairs=pairs)
    x, _, _ = next(iter(ds))
    hf = _oracle(hf_python, tmp_path, {"folder": folder,
                                       "class": "BertForSequenceClassification",
                                       "texts": texts, "text_pairs": pairs,
                                       **_as_lists(x)})
    ours = model(x).numpy()
    np.testing.assert_allclose(hf["logits"], ours, atol=1e-4)
    width = x["token_ids"].shape[1]
    np.testing.assert_array_equal(hf["text_ids"][:, :width],
                                  np.where(x["padding_mask"].numpy() > 0,
                                           x["token_ids"].numpy(), -1))
    np.testing.assert_allclose(hf["text_logits"], ours, atol=1e-4)
    assert tf.reduce_all(tf.equal(hf["text_segments"][:, :width],
                                  np.where(x["padding_mask"].numpy() > 0,
                                           x["segment_ids"].numpy(), -1)))
