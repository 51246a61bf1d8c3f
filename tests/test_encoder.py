"""BertEncoder and MaskedLM: presets, weight layout, serialization, saving, numerics, precision."""

import keras
import numpy as np
import pytest

from helpers import (numpy_bert_forward, random_inputs, randomize_weights, run_config_test,
                     run_saving_test)
from tfmask import presets
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import MaskedLM

ENCODER_INPUTS = ("token_ids", "segment_ids", "padding_mask")
MODEL_BASE_KEYS = {"name", "trainable"}


def _tiny_encoder(**kwargs):
    args = dict(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=16, dropout=0.0)
    args.update(kwargs)
    return BertEncoder(**args)


def _encoder_inputs(inputs):
    return {k: inputs[k] for k in ENCODER_INPUTS}


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ----------------------------------------------------------------------------------------------
# Presets and parameter counts
# ----------------------------------------------------------------------------------------------
#: (num_layers, hidden_dim, num_heads) of the released checkpoints (Turc et al. 2019 for the
#: small ones, Devlin et al. 2019 for base and large).
RELEASED_SHAPES = {
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_medium": (8, 512, 8),
    "bert_base": (12, 768, 12),
    "bert_large": (24, 1024, 16),
}


def bert_parameter_count(c) -> int:
    """BERT's parameter count from its shape (pooler included), written out per weight."""
    h, i = c.hidden_dim, c.intermediate_dim
    embeddings = (c.vocabulary_size + c.max_sequence_length + c.num_segments) * h + 2 * h
    attention = 4 * (h * h + h) + 2 * h  # q, k, v, output + LayerNorm
    feed_forward = (h * i + i) + (i * h + h) + 2 * h  # intermediate, output + LayerNorm
    pooler = h * h + h
    return embeddings + c.num_layers * (attention + feed_forward) + pooler


def test_presets_cover_the_released_sizes():
    assert set(presets.PRESETS) == set(RELEASED_SHAPES)


@pytest.mark.parametrize("preset", sorted(RELEASED_SHAPES))
def test_preset_encoder_config(preset):
    config = presets.encoder_config(preset, vocabulary_size=1234, max_sequence_length=128,
                                    dropout=0.2)
    num_layers, hidden_dim, num_heads = RELEASED_SHAPES[preset]
    assert (config.num_layers, config.hidden_dim, config.num_heads) == RELEASED_SHAPES[preset]
    assert config.intermediate_dim == 4 * hidden_dim
    assert hidden_dim // num_heads == 64  # head size of every released checkpoint
    assert config.vocabulary_size == 1234
    assert config.max_sequence_length == 128
    assert config.dropout == 0.2
    assert config.num_segments == 2


@pytest.mark.parametrize("preset, expected", [
    ("bert_base", 109_482_240),  # BERT-base uncased, vocabulary 30522, with pooler
    ("bert_large", 335_141_888),  # BERT-large uncased, vocabulary 30522, with pooler
])
def test_large_preset_parameter_counts_match_bert(preset, expected):
    # Formula only: building these on CPU would take seconds to minutes. The formula itself is
    # checked against built encoders of the smaller presets below.
    assert bert_parameter_count(presets.encoder_config(preset, vocabulary_size=30522)) == expected


@pytest.mark.parametrize("preset", ["bert_tiny", "bert_mini", "bert_small", "bert_medium"])
def test_small_presets_build_the_right_weights(preset):
    config = presets.encoder_config(preset, vocabulary_size=97, max_sequence_length=64)
    encoder = BertEncoder.from_encoder_config(config)
    num_layers, hidden, heads = RELEASED_SHAPES[preset]
    assert encoder.count_params() == bert_parameter_count(config)
    # 5 embedding weights, 16 per block, 2 pooler weights.
    assert len(encoder.weights) == 5 + 16 * num_layers + 2
    shapes = {w.path: tuple(w.shape) for w in encoder.weights}
    last = f"transformer_layer_{num_layers - 1}/"
    assert shapes["token_embedding/embeddings"] == (97, hidden)
    assert shapes["position_embedding/embeddings"] == (64, hidden)
    assert shapes[last + "self_attention/value/kernel"] == (hidden, heads, 64)
    assert shapes[last + "self_attention/attention_output/kernel"] == (heads, 64, hidden)
    assert shapes[last + "intermediate_dense/kernel"] == (hidden, 4 * hidden)
    assert shapes["pooler_dense/kernel"] == (hidden, hidden)


# ----------------------------------------------------------------------------------------------
# Weight layout: the documented BERT mapping
# ----------------------------------------------------------------------------------------------
def test_weight_paths_follow_the_bert_mapping():
    encoder = BertEncoder(vocabulary_size=30, num_layers=2, num_heads=4, hidden_dim=32,
                          intermediate_dim=48, max_sequence_length=20, num_segments=3)
    shapes = {w.path: tuple(w.shape) for w in encoder.weights}
    expected = {
        "token_embedding/embeddings": (30, 32),
        "position_embedding/embeddings": (20, 32),
        "segment_embedding/embeddings": (3, 32),
        "embeddings_layer_norm/gamma": (32,),
        "embeddings_layer_norm/beta": (32,),
        "pooler_dense/kernel": (32, 32),
        "pooler_dense/bias": (32,),
    }
    for i in range(2):
        p = f"transformer_layer_{i}/"
        for name in ("query", "key", "value"):
            expected[p + f"self_attention/{name}/kernel"] = (32, 4, 8)  # [hidden, heads, head_dim]
            expected[p + f"self_attention/{name}/bias"] = (4, 8)
        expected[p + "self_attention/attention_output/kernel"] = (4, 8, 32)
        expected[p + "self_attention/attention_output/bias"] = (32,)
        for norm in ("self_attention_layer_norm", "output_layer_norm"):
            expected[p + f"{norm}/gamma"] = (32,)
            expected[p + f"{norm}/beta"] = (32,)
        expected[p + "intermediate_dense/kernel"] = (32, 48)
        expected[p + "intermediate_dense/bias"] = (48,)
        expected[p + "output_dense/kernel"] = (48, 32)
        expected[p + "output_dense/bias"] = (32,)
    assert shapes == expected


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
def test_encoder_outputs():
    encoder = _tiny_encoder()
    assert sorted(encoder.input) == sorted(ENCODER_INPUTS)
    out = encoder(_encoder_inputs(random_inputs(batch=3, length=8)))
    assert set(out) == {"sequence_output", "pooled_output"}
    assert tuple(out["sequence_output"].shape) == (3, 8, 16)
    assert tuple(out["pooled_output"].shape) == (3, 16)
    # The pooler is tanh(dense([CLS] state)).
    pooled = np.tanh(_np(out["sequence_output"])[:, 0] @ _np(encoder.pooler_dense.kernel)
                     + _np(encoder.pooler_dense.bias))
    np.testing.assert_allclose(_np(out["pooled_output"]), pooled, atol=1e-5)


def test_masked_lm_outputs_and_tied_head():
    encoder = _tiny_encoder()
    model = MaskedLM(encoder)
    assert sorted(model.input) == sorted(ENCODER_INPUTS + ("mask_positions",))
    logits = model(random_inputs(batch=2, length=8, num_predictions=3))
    assert tuple(logits.shape) == (2, 3, 30)
    assert logits.dtype == "float32"
    assert model.mlm_head.token_embedding is encoder.token_embedding
    # Encoder weights + head's dense (H*H + H), LayerNorm (2H) and output bias (V): no [H, V].
    assert model.count_params() == encoder.count_params() + 16 * 16 + 16 + 2 * 16 + 30
    assert len(model.weights) == len(encoder.weights) + 5


def test_padding_does_not_affect_real_positions():
    encoder = _tiny_encoder()
    randomize_weights(encoder, stddev=0.2)
    inputs = _encoder_inputs(random_inputs(batch=2, length=8))  # row 1: 4 real, 4 padded
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["token_ids"][1, 4:] = [7, 8, 9, 10]
    changed["segment_ids"][1, 4:] = 1
    out, out_changed = encoder(inputs), encoder(changed)
    seq, seq_changed = _np(out["sequence_output"]), _np(out_changed["sequence_output"])
    np.testing.assert_allclose(seq_changed[0], seq[0], atol=1e-6)
    np.testing.assert_allclose(seq_changed[1, :4], seq[1, :4], atol=1e-6)
    np.testing.assert_allclose(_np(out_changed["pooled_output"]), _np(out["pooled_output"]),
                               atol=1e-6)
    # With those positions marked real, the change does reach the other positions.
    changed["padding_mask"][1, 4:] = True
    seq_unmasked = _np(encoder(changed)["sequence_output"])
    assert np.abs(seq_unmasked[1, :4] - seq[1, :4]).max() > 1e-3


# ----------------------------------------------------------------------------------------------
# Independent oracle
# ----------------------------------------------------------------------------------------------
def test_encoder_matches_numpy_bert_forward():
    encoder = BertEncoder(vocabulary_size=50, num_layers=2, num_heads=4, hidden_dim=32,
                          intermediate_dim=64, max_sequence_length=16, dropout=0.1)
    randomize_weights(encoder, stddev=0.2, seed=1)
    rng = np.random.default_rng(2)
    lengths = np.array([10, 7, 3])
    padding_mask = np.arange(10)[None, :] < lengths[:, None]
    token_ids = np.where(padding_mask, rng.integers(1, 50, (3, 10)), 0).astype("int32")
    segment_ids = ((np.arange(10)[None, :] >= lengths[:, None] // 2) & padding_mask).astype(
        "int32")
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}

    expected = numpy_bert_forward({w.path: _np(w) for w in encoder.weights}, inputs,
                                  num_heads=4)
    out = encoder(inputs, training=False)  # dropout 0.1 must be off at inference
    seq = _np(out["sequence_output"])
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(seq[b, :n], expected["sequence_output"][b, :n], atol=1e-5,
                                   rtol=0)
    np.testing.assert_allclose(_np(out["pooled_output"]), expected["pooled_output"], atol=1e-5,
                               rtol=0)
    # The oracle is sensitive: the tanh GELU (a common porting slip) is off by more than atol.
    approx = BertEncoder(vocabulary_size=50, num_layers=2, num_heads=4, hidden_dim=32,
                         intermediate_dim=64, max_sequence_length=16,
                         activation="gelu_approximate")
    approx.set_weights(encoder.get_weights())
    diff = np.abs(_np(approx(inputs)["sequence_output"]) - seq)[padding_mask].max()
    assert diff > 1e-4


# ----------------------------------------------------------------------------------------------
# Serialization and saving
# ----------------------------------------------------------------------------------------------
def test_encoder_config_round_trip():
    rebuilt = run_config_test(BertEncoder, dict(
        vocabulary_size=31, num_layers=1, num_heads=4, hidden_dim=8, intermediate_dim=12,
        dropout=0.3, max_sequence_length=9, num_segments=3, activation="gelu_approximate",
        dtype="float16"), base_keys=MODEL_BASE_KEYS)
    assert rebuilt.dtype_policy.name == "float16"
    assert rebuilt.transformer_layers[0].activation == "gelu_approximate"
    assert rebuilt.embeddings_dropout.rate == 0.3
    assert rebuilt.segment_embedding.input_dim == 3
    assert rebuilt.position_embedding.embeddings.shape == (9, 8)


def test_masked_lm_config_round_trip():
    rebuilt = run_config_test(MaskedLM, dict(encoder=_tiny_encoder(num_layers=1),
                                             activation="relu"), base_keys=MODEL_BASE_KEYS)
    assert rebuilt.mlm_head.activation == "relu"
    assert rebuilt.mlm_head.token_embedding is rebuilt.encoder.token_embedding


def test_encoder_saving(tmp_path):
    encoder = _tiny_encoder()
    randomize_weights(encoder, stddev=0.2)
    reloaded = run_saving_test(encoder, _encoder_inputs(random_inputs()), tmp_path)
    assert isinstance(reloaded, BertEncoder)
    assert reloaded.get_config() == encoder.get_config()


def test_masked_lm_saving_keeps_the_head_tied(tmp_path):
    model = MaskedLM(_tiny_encoder())
    randomize_weights(model, stddev=0.2)
    reloaded = run_saving_test(model, random_inputs(), tmp_path)
    assert isinstance(reloaded, MaskedLM)
    assert reloaded.mlm_head.token_embedding is reloaded.encoder.token_embedding
    # Still tied after the reload: a new table moves the logits.
    inputs = random_inputs()
    before = _np(reloaded(inputs))
    table = reloaded.encoder.token_embedding.embeddings
    table.assign(_np(table) * -1.0)
    assert not np.allclose(_np(reloaded(inputs)), before)


# ----------------------------------------------------------------------------------------------
# Mixed precision
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def mixed_float16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _check_mixed_precision(encoder):
    assert encoder.token_embedding.embeddings.dtype == "float32"  # variables stay float32
    inputs = random_inputs()
    out = encoder(_encoder_inputs(inputs))
    assert out["sequence_output"].dtype == "float16"
    assert out["pooled_output"].dtype == "float16"
    model = MaskedLM(encoder)
    assert model.mlm_head.compute_dtype == "float16"
    logits = model(inputs)
    assert logits.dtype == "float32"  # a stable loss under mixed precision
    assert np.all(np.isfinite(_np(logits)))


def test_mixed_float16_global_policy(mixed_float16_policy):
    _check_mixed_precision(_tiny_encoder())


def test_mixed_float16_dtype_argument_survives_reload(tmp_path):
    assert keras.config.dtype_policy().name == "float32"
    encoder = _tiny_encoder(dtype="mixed_float16")
    _check_mixed_precision(encoder)
    model = MaskedLM(encoder)
    reloaded = run_saving_test(model, random_inputs(), tmp_path, atol=1e-2)
    assert reloaded.encoder.dtype_policy.name == "mixed_float16"
    out = reloaded.encoder(_encoder_inputs(random_inputs()))
    assert out["sequence_output"].dtype == "float16"
    assert reloaded(random_inputs()).dtype == "float32"
