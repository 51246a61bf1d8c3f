"""Serializable layers of the BERT encoder and its MLM head.

Weight layout follows BERT one-to-one, so importing a checkpoint is a table of names and
reshapes (`keras.layers.MultiHeadAttention` keeps per-head kernels: query/key/value kernels
are `[hidden, heads, head_dim]`, the output kernel `[heads, head_dim, hidden]`).

Every layer forwards `**kwargs`, keeps one attribute per argument and returns all of them from
`get_config`, so `from_config(get_config())` rebuilds it exactly.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

_PACKAGE = "tfmask"


def _activation(name: str):
    """"gelu" is BERT's exact erf GELU; "gelu_approximate" the tanh form some ports use."""
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    return keras.activations.get(name)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embeddings, sliced to the input length.

    Args:
      max_sequence_length: number of positions (rows of the table).
      initializer: initializer of the `[max_sequence_length, hidden]` table.

    Call: `[B, L, H]` float -> `[1, L, H]` position vectors (broadcast over the batch).
    """

    def __init__(self, max_sequence_length: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.max_sequence_length = int(max_sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.max_sequence_length, input_shape[-1]),
            initializer=self.initializer)

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        return ops.expand_dims(ops.cast(self.embeddings[:length], self.compute_dtype), 0)

    def compute_output_shape(self, input_shape):
        return (1, input_shape[1], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(max_sequence_length=self.max_sequence_length,
                      initializer=keras.initializers.serialize(self.initializer))
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReplicaDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose masks are independent across the replicas of a
    `tf.distribute` strategy.

    Keras draws each dropout seed from the layer's `SeedGenerator`, whose state is one
    mirrored variable: under `MirroredStrategy` (or multi-worker, or TPU) every replica reads
    the same state, so every replica drops the same units of its own slice of the batch. This
    layer folds the replica's id in its sync group into that seed. With one replica it *is*
    Keras's `Dropout` (same seed, same mask, bit for bit), so single-device runs are unchanged.
    """

    def call(self, inputs, training=False):
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        if not (training and self.rate > 0) or replicas == 1:
            return super().call(inputs, training=training)
        seed = tf.cast(self.seed_generator.next(), tf.int64)  # the same on every replica
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(context.replica_id_in_sync_group, tf.int64))
        noise_shape = None
        if self.noise_shape is not None:
            shape = tf.shape(inputs)
            noise_shape = tf.stack([shape[i] if d is None else d
                                    for i, d in enumerate(self.noise_shape)])
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=self.rate, noise_shape=noise_shape, seed=seed)

    @classmethod
    def replacing(cls, layer: keras.layers.Dropout) -> "ReplicaDropout":
        """A `ReplicaDropout` that draws exactly the seeds `layer` would have drawn (its
        generator state copied; no draw from the global RNG, so layers built later get the
        seeds they would have got)."""
        replica = cls(layer.rate, noise_shape=layer.noise_shape, seed=0, name=layer.name,
                      dtype=layer.dtype_policy)
        replica.seed = layer.seed
        if layer.rate > 0:  # Keras gives a layer that never drops no generator
            replica.seed_generator.state.assign(layer.seed_generator.state.value)
        return replica


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReplicaAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose dropout on the attention probabilities is a
    `ReplicaDropout` (otherwise the same layer: weights, call and config)."""

    def _build_attention(self, rank):
        super()._build_attention(rank)
        keras_dropout = self._dropout_layer
        self._tracker.untrack(keras_dropout)  # not a sublayer any more
        self._dropout_layer = ReplicaDropout.replacing(keras_dropout)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """One post-LayerNorm BERT block: self-attention, add & norm, GELU feed-forward, add & norm.

    Args:
      num_heads: attention heads; head size is `hidden_dim // num_heads`.
      intermediate_dim: width of the feed-forward layer.
      dropout: dropout rate on attention probabilities and on both residual branches.
      activation: "gelu" (exact, as BERT) or "gelu_approximate" or any Keras activation name.
      layer_norm_epsilon: 1e-12 as in BERT.
      kernel_initializer: initializer of every kernel (BERT: truncated normal, stddev 0.02).

    Call:
      inputs: [B, L, H] float.
      attention_mask: [B, 1, L] or [B, L, L] bool, True where attention is allowed.
    Returns: [B, L, H].
    """

    def __init__(self, num_heads: int, intermediate_dim: int, dropout: float = 0.1,
                 activation: str = "gelu", layer_norm_epsilon: float = 1e-12,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(f"hidden size {hidden_dim} is not divisible by num_heads "
                             f"{self.num_heads}")
        init = lambda: keras.initializers.get(  # noqa: E731  a fresh initializer per weight
            keras.initializers.serialize(self.kernel_initializer))
        common = dict(dtype=self.dtype_policy)
        # === Attention ===
        self.self_attention = ReplicaAttention(
            num_heads=self.num_heads, key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout, kernel_initializer=init(), name="self_attention", **common)
        self.self_attention.build(input_shape, input_shape)
        self.self_attention_dropout = ReplicaDropout(self.dropout, **common)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="self_attention_layer_norm", **common)
        self.self_attention_layer_norm.build(input_shape)
        # === Feed-forward ===
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=_activation(self.activation),
            kernel_initializer=init(), name="intermediate_dense", **common)
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=init(), name="output_dense", **common)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.output_dropout = ReplicaDropout(self.dropout, **common)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="output_layer_norm", **common)
        self.output_layer_norm.build(input_shape)
        self.built = True

    def call(self, inputs, attention_mask=None, training=None):
        x = inputs  # [B, L, H]
        attended = self.self_attention(x, x, attention_mask=attention_mask, training=training)
        x = self.self_attention_layer_norm(
            x + self.self_attention_dropout(attended, training=training))
        hidden = self.output_dense(self.intermediate_dense(x))  # [B, L, I] -> [B, L, H]
        return self.output_layer_norm(x + self.output_dropout(hidden, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, intermediate_dim=self.intermediate_dim,
            dropout=self.dropout, activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedLMHead(keras.layers.Layer):
    """BERT's MLM head, evaluated only at the masked positions.

    Gathers the masked positions, then dense + activation + LayerNorm, then logits through the
    *transpose of the token embedding* (tied weights) plus a per-token bias.

    Args:
      token_embedding: the encoder's `keras.layers.Embedding` (its matrix is the output
        projection). Required.
      activation: as in `TransformerBlock`.
      layer_norm_epsilon: 1e-12 as in BERT.
      kernel_initializer: initializer of the dense kernel.

    Call:
      sequence_output: [B, L, H] float.
      mask_positions: [B, P] int.
    Returns: [B, P, V] float32 logits (float32 even under mixed precision, for a stable loss).
    """

    def __init__(self, token_embedding, activation: str = "gelu",
                 layer_norm_epsilon: float = 1e-12, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(token_embedding, dict):  # from get_config
            token_embedding = keras.layers.deserialize(token_embedding)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, sequence_output_shape, mask_positions_shape=None):
        sequence_shape = sequence_output_shape
        hidden_dim = sequence_shape[-1]
        if not self.token_embedding.built:
            self.token_embedding.build((None, None))
        self.dense = keras.layers.Dense(
            hidden_dim, activation=_activation(self.activation),
            kernel_initializer=self.kernel_initializer, name="dense", dtype=self.dtype_policy)
        self.dense.build(sequence_shape)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy)
        self.layer_norm.build(sequence_shape)
        self.bias = self.add_weight(
            name="bias", shape=(self.token_embedding.input_dim,), initializer="zeros")
        self.built = True

    def call(self, sequence_output, mask_positions):
        positions = ops.cast(mask_positions, "int32")[..., None]  # [B, P, 1]
        x = ops.take_along_axis(sequence_output, positions, axis=1)  # [B, P, H]
        x = self.layer_norm(self.dense(x))
        embeddings = ops.cast(self.token_embedding.embeddings, x.dtype)  # [V, H]
        # [B, P, H] x [H, V] lowers to one 2-D MatMul; ops.einsum("bph,vh->bpv") would become
        # a broadcasting BatchMatMulV2 whose gradient builds a [B, H, V] tensor and sums it
        # over B (measured ~10% of a bert_tiny training step on CPU).
        logits = ops.matmul(x, ops.transpose(embeddings))
        return ops.cast(logits, "float32") + ops.cast(self.bias, "float32")

    def compute_output_shape(self, sequence_output_shape, mask_positions_shape):
        return (*mask_positions_shape[:2], self.token_embedding.input_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            token_embedding=keras.layers.serialize(self.token_embedding),
            activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
