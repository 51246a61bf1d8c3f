"""The BERT encoder: a Keras functional graph inside a thin `keras.Model` subclass."""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from tfmask.config import EncoderConfig
from tfmask.model.layers import PositionEmbedding, ReplicaDropout, TransformerBlock


def bert_initializer():
    """BERT's initializer: truncated normal, stddev 0.02."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="tfmask")
class BertEncoder(keras.Model):
    """BERT (Devlin et al., 2019): embeddings, post-LN Transformer blocks, tanh pooler.

    Weight names map one-to-one onto original and Hugging Face BERT checkpoints:

        token_embedding / position_embedding / segment_embedding   word/position/token_type
        embeddings_layer_norm                                      embeddings.LayerNorm
        transformer_layer_{i}.self_attention.{query,key,value,attention_output}
        transformer_layer_{i}.self_attention_layer_norm            attention.output.LayerNorm
        transformer_layer_{i}.intermediate_dense / output_dense    intermediate / output.dense
        transformer_layer_{i}.output_layer_norm                    output.LayerNorm
        pooler_dense                                               pooler.dense

    Args:
      vocabulary_size: V, rows of the token embedding.
      num_layers: number of Transformer blocks.
      num_heads: attention heads per block.
      hidden_dim: H, width of every hidden state.
      intermediate_dim: width of the feed-forward layers (4 H in BERT).
      dropout: dropout on embeddings, attention probabilities and residual branches.
      max_sequence_length: rows of the position embedding (512 in BERT).
      num_segments: rows of the segment (token type) embedding.
      activation: "gelu" (BERT's exact GELU) or "gelu_approximate".
      dtype: a dtype policy name, e.g. "mixed_float16".

    Inputs (dict): `token_ids` [B, L] int32, `segment_ids` [B, L] int32, `padding_mask` [B, L]
      int32 (1 on real tokens, 0 on padding; bool is accepted too).
    Outputs (dict): `sequence_output` [B, L, H], `pooled_output` [B, H] (tanh of a dense layer
      over the `[CLS]` state).

    Example:
      >>> encoder = BertEncoder(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
      ...                       intermediate_dim=64)
      >>> out = encoder({"token_ids": ids, "segment_ids": ids * 0, "padding_mask": ids > 0})
      >>> out["sequence_output"].shape  # (batch, length, 32)

    Reference: https://arxiv.org/abs/1810.04805
    """

    def __init__(self, vocabulary_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                 intermediate_dim: int, dropout: float = 0.1, max_sequence_length: int = 512,
                 num_segments: int = 2, activation: str = "gelu", dtype=None, **kwargs):
        # === Layers ===
        common = dict(dtype=dtype)
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, embeddings_initializer=bert_initializer(),
            name="token_embedding", **common)
        self.position_embedding = PositionEmbedding(
            max_sequence_length, initializer=bert_initializer(), name="position_embedding",
            **common)
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, embeddings_initializer=bert_initializer(),
            name="segment_embedding", **common)
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, name="embeddings_layer_norm", **common)
        self.embeddings_dropout = ReplicaDropout(dropout, name="embeddings_dropout", **common)
        self.transformer_layers = [
            TransformerBlock(num_heads, intermediate_dim, dropout=dropout, activation=activation,
                             kernel_initializer=bert_initializer(),
                             name=f"transformer_layer_{i}", **common)
            for i in range(num_layers)
        ]
        self.pooler_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=bert_initializer(),
            name="pooler_dense", **common)

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        # int32, not bool: Keras cannot split a bool batch across replicas (no bool AddN).
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # [B, L, H]
        x = tokens + self.position_embedding(tokens) + self.segment_embedding(segment_ids)
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        # [B, 1, L]: every query may attend to every real key. Broadcast over queries and
        # heads instead of materialising a [B, L, L] mask per layer.
        attention_mask = ops.expand_dims(ops.cast(padding_mask, "bool"), axis=1)
        for block in self.transformer_layers:
            x = block(x, attention_mask=attention_mask)
        pooled = self.pooler_dense(x[:, 0, :])
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
            **kwargs)
        if dtype is not None:
            # The functional constructor ignores `dtype`: set the model's policy so that
            # `get_config` (hence `.keras` reloads) and the heads, which copy
            # `encoder.dtype_policy`, see the policy the layers were built with.
            self.dtype_policy = dtype

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation

    @classmethod
    def from_encoder_config(cls, config: EncoderConfig, **kwargs) -> "BertEncoder":
        return cls(**dataclasses.asdict(config), **kwargs)

    def encoder_config(self) -> EncoderConfig:
        """The `EncoderConfig` this encoder was built from (`from_encoder_config`'s inverse)."""
        return EncoderConfig(**{f.name: getattr(self, f.name)
                                for f in dataclasses.fields(EncoderConfig)})

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype
        config.update(
            vocabulary_size=self.vocabulary_size, num_layers=self.num_layers,
            num_heads=self.num_heads, hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim, dropout=self.dropout,
            max_sequence_length=self.max_sequence_length, num_segments=self.num_segments,
            activation=self.activation)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)


def with_dropout(encoder: BertEncoder, dropout: float) -> BertEncoder:
    """The same encoder (config and weights) with `dropout` inside it."""
    config = dataclasses.replace(encoder.encoder_config(), dropout=float(dropout))
    rebuilt = BertEncoder.from_encoder_config(config)
    rebuilt.set_weights(encoder.get_weights())
    return rebuilt
