"""TransformerBlock, PositionEmbedding and MaskedLMHead: config, shapes, masking, tied weights."""

import keras
import numpy as np
import pytest

from helpers import run_config_test, run_layer_test
from tfmask.model.layers import MaskedLMHead, PositionEmbedding, TransformerBlock

B, L, H, V = 2, 6, 16, 11


def _floats(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding_attention_mask(real_lengths, length=L):
    """[B, 1, L] bool, True on the first `real_lengths[b]` keys of row b."""
    return (np.arange(length)[None, :] < np.asarray(real_lengths)[:, None])[:, None, :]


# ----------------------------------------------------------------------------------------------
# Serialization: every argument non-default; config keys == constructor parameters
# ----------------------------------------------------------------------------------------------
def test_transformer_block_config_round_trip():
    rebuilt = run_config_test(TransformerBlock, dict(
        num_heads=4, intermediate_dim=48, dropout=0.25, activation="gelu_approximate",
        layer_norm_epsilon=1e-6,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.05, seed=3)))
    rebuilt.build((None, L, H))
    # The arguments reach the sublayers that use them.
    assert rebuilt.self_attention.num_heads == 4
    assert rebuilt.self_attention.key_dim == H // 4
    assert rebuilt.self_attention.dropout == 0.25
    assert rebuilt.self_attention_dropout.rate == 0.25
    assert rebuilt.output_dropout.rate == 0.25
    assert rebuilt.intermediate_dense.kernel.shape == (H, 48)
    assert rebuilt.self_attention_layer_norm.epsilon == 1e-6
    assert rebuilt.output_layer_norm.epsilon == 1e-6
    assert rebuilt.kernel_initializer.get_config()["stddev"] == 0.05


def test_position_embedding_config_round_trip():
    rebuilt = run_config_test(PositionEmbedding, dict(max_sequence_length=7,
                                                      initializer="ones"))
    rebuilt.build((None, 5, H))
    assert rebuilt.embeddings.shape == (7, H)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rebuilt.embeddings), 1.0)


def test_masked_lm_head_config_round_trip():
    embedding = keras.layers.Embedding(V, H, name="token_embedding")
    rebuilt = run_config_test(MaskedLMHead, dict(
        token_embedding=embedding, activation="relu", layer_norm_epsilon=1e-5,
        kernel_initializer="ones"))
    # The embedding comes back as an equivalent (new) layer when the head is rebuilt alone;
    # MaskedLM re-ties it to the encoder's (tested in test_encoder.py).
    assert isinstance(rebuilt.token_embedding, keras.layers.Embedding)
    assert rebuilt.token_embedding.input_dim == V and rebuilt.token_embedding.output_dim == H
    rebuilt.build((None, L, H))
    assert rebuilt.layer_norm.epsilon == 1e-5
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rebuilt.dense.kernel), 1.0)


def test_transformer_block_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(num_heads=3, intermediate_dim=8).build((None, L, H))


# ----------------------------------------------------------------------------------------------
# Shapes, weights, one training step
# ----------------------------------------------------------------------------------------------
def test_transformer_block_layer_test():
    x = _floats(B, L, H)
    run_layer_test(
        TransformerBlock, dict(num_heads=2, intermediate_dim=32, dropout=0.0),
        x, expected_output_shape=(B, L, H),
        # query/key/value/attention_output kernel+bias (8), 2 LayerNorms (4), 2 Dense (4)
        expected_num_trainable_weights=16,
        call_kwargs={"attention_mask": _padding_attention_mask([L, 4])},
        expected_unchanged=("self_attention/key/bias",))


def test_transformer_block_weight_shapes_follow_bert_layout():
    block = TransformerBlock(num_heads=4, intermediate_dim=32, name="transformer_layer_0")
    block.build((None, L, H))
    shapes = {w.path: tuple(w.shape) for w in block.weights}
    p = "transformer_layer_0/"
    assert shapes == {
        p + "self_attention/query/kernel": (H, 4, 4),
        p + "self_attention/query/bias": (4, 4),
        p + "self_attention/key/kernel": (H, 4, 4),
        p + "self_attention/key/bias": (4, 4),
        p + "self_attention/value/kernel": (H, 4, 4),
        p + "self_attention/value/bias": (4, 4),
        p + "self_attention/attention_output/kernel": (4, 4, H),
        p + "self_attention/attention_output/bias": (H,),
        p + "self_attention_layer_norm/gamma": (H,),
        p + "self_attention_layer_norm/beta": (H,),
        p + "intermediate_dense/kernel": (H, 32),
        p + "intermediate_dense/bias": (32,),
        p + "output_dense/kernel": (32, H),
        p + "output_dense/bias": (H,),
        p + "output_layer_norm/gamma": (H,),
        p + "output_layer_norm/beta": (H,),
    }


def test_position_embedding_layer_test():
    # Batch 1 here because the output is [1, L, H] (broadcast over the batch).
    run_layer_test(PositionEmbedding, dict(max_sequence_length=10), _floats(1, L, H),
                   expected_output_shape=(1, L, H), expected_num_trainable_weights=1)


def test_position_embedding_slices_table_to_input_length():
    layer = PositionEmbedding(max_sequence_length=10)
    out = keras.ops.convert_to_numpy(layer(_floats(3, 4, H)))
    assert out.shape == (1, 4, H)
    np.testing.assert_array_equal(out[0], keras.ops.convert_to_numpy(layer.embeddings)[:4])


def test_masked_lm_head_layer_test():
    embedding = keras.layers.Embedding(V, H)
    positions = np.array([[1, 3, 0], [2, 2, 5]], "int32")
    run_layer_test(
        MaskedLMHead, dict(token_embedding=embedding), (_floats(B, L, H), positions),
        expected_output_shape=(B, 3, V),
        # tied embedding + dense kernel/bias + LayerNorm gamma/beta + output bias
        expected_num_trainable_weights=6)


def test_activation_argument_changes_the_block():
    x = _floats(B, L, H)
    gelu = TransformerBlock(num_heads=2, intermediate_dim=32, activation="gelu")
    relu = TransformerBlock(num_heads=2, intermediate_dim=32, activation="relu")
    gelu.build(x.shape)
    relu.build(x.shape)
    relu.set_weights(gelu.get_weights())
    assert not np.allclose(keras.ops.convert_to_numpy(gelu(x)), keras.ops.convert_to_numpy(relu(x)))


# ----------------------------------------------------------------------------------------------
# The attention mask
# ----------------------------------------------------------------------------------------------
def test_padded_keys_do_not_affect_real_positions():
    block = TransformerBlock(num_heads=2, intermediate_dim=32, dropout=0.0)
    lengths = [L, 3]
    mask = _padding_attention_mask(lengths)
    x = _floats(B, L, H)
    changed = x.copy()
    changed[1, 3:] = _floats(L - 3, H, seed=7) * 10.0  # new states at the padded positions
    out = keras.ops.convert_to_numpy(block(x, attention_mask=mask))
    out_changed = keras.ops.convert_to_numpy(block(changed, attention_mask=mask))
    np.testing.assert_allclose(out_changed[0], out[0], atol=1e-6)
    np.testing.assert_allclose(out_changed[1, :3], out[1, :3], atol=1e-6)
    # The same change without a mask does move the real positions: the check above has teeth.
    unmasked = keras.ops.convert_to_numpy(block(x))
    unmasked_changed = keras.ops.convert_to_numpy(block(changed))
    assert np.abs(unmasked_changed[1, :3] - unmasked[1, :3]).max() > 1e-3


# ----------------------------------------------------------------------------------------------
# The MLM head: gathered positions, tied output projection
# ----------------------------------------------------------------------------------------------
def _built_head():
    embedding = keras.layers.Embedding(V, H)
    head = MaskedLMHead(embedding, kernel_initializer="glorot_uniform")
    sequence = _floats(B, L, H)
    positions = np.array([[1, 4], [0, 5]], "int32")
    head(sequence, positions)
    return head, embedding, sequence, positions


def test_masked_lm_head_has_no_output_kernel_of_its_own():
    head, embedding, _, _ = _built_head()
    assert head.token_embedding is embedding
    shapes = {w.path: tuple(w.shape) for w in head.weights}
    # Own weights: dense [H, H] + [H], LayerNorm [H] x 2, output bias [V]; plus the tied table.
    assert len(head.weights) == 6, shapes
    own = [w for w in head.weights if w is not embedding.embeddings]
    assert len(own) == 5
    assert sorted(tuple(w.shape) for w in own) == sorted([(H, H), (H,), (H,), (H,), (V,)])
    assert not any(tuple(w.shape) in ((H, V), (V, H)) for w in own)


def test_masked_lm_head_logits_use_the_tied_embedding():
    head, embedding, sequence, positions = _built_head()
    head.bias.assign(_floats(V, seed=5))

    def expected_logits(table):
        gathered = np.take_along_axis(sequence, positions[..., None], axis=1)  # [B, P, H]
        x = keras.ops.convert_to_numpy(head.layer_norm(head.dense(gathered)))
        return x @ table.T + keras.ops.convert_to_numpy(head.bias)  # [B, P, V]

    logits = keras.ops.convert_to_numpy(head(sequence, positions))
    table = keras.ops.convert_to_numpy(embedding.embeddings)
    np.testing.assert_allclose(logits, expected_logits(table), atol=1e-5)

    new_table = _floats(V, H, seed=9)
    embedding.embeddings.assign(new_table)
    new_logits = keras.ops.convert_to_numpy(head(sequence, positions))
    assert not np.allclose(new_logits, logits)
    np.testing.assert_allclose(new_logits, expected_logits(new_table), atol=1e-5)


def test_masked_lm_head_gathers_mask_positions():
    head, _, sequence, _ = _built_head()
    a = keras.ops.convert_to_numpy(head(sequence, np.array([[1, 4], [0, 5]], "int32")))
    b = keras.ops.convert_to_numpy(head(sequence, np.array([[4, 1], [5, 5]], "int32")))
    np.testing.assert_allclose(b[0, 0], a[0, 1], atol=1e-6)
    np.testing.assert_allclose(b[0, 1], a[0, 0], atol=1e-6)
    np.testing.assert_allclose(b[1, 0], a[1, 1], atol=1e-6)
    np.testing.assert_allclose(b[1, 1], a[1, 1], atol=1e-6)
