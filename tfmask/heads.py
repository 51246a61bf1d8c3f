"""Task models that wrap a `BertEncoder`."""

from __future__ import annotations

import keras

from tfmask.encoder import BertEncoder, bert_initializer
from tfmask.layers import MaskedLMHead


@keras.saving.register_keras_serializable(package="tfmask")
class MaskedLM(keras.Model):
    """BERT masked-language model: encoder + MLM head at `mask_positions`.

    The head's output projection is the encoder's token embedding (tied), so the model has no
    `[H, V]` matrix of its own, as in BERT.

    Args:
      encoder: a `BertEncoder`.
      activation: activation of the head's dense layer (defaults to the encoder's).

    Inputs (dict): the encoder's inputs plus `mask_positions` [B, P] int32.
    Outputs: [B, P, V] float32 logits over the vocabulary at each masked position.

    Train with `y = mask_ids` [B, P] and `sample_weight = mask_weights` [B, P] (see
    `tfmask.data.pretraining_dataset`), `SparseCategoricalCrossentropy(from_logits=True)` and
    `weighted_metrics`.
    """

    def __init__(self, encoder: BertEncoder, activation: str | None = None, **kwargs):
        # === Layers ===
        self.encoder = encoder
        self.activation = activation or encoder.activation
        self.mlm_head = MaskedLMHead(
            encoder.token_embedding, activation=self.activation,
            kernel_initializer=bert_initializer(), name="mlm_head",
            dtype=encoder.dtype_policy)

        # === Functional Model ===
        inputs = dict(encoder.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32",
                                               name="mask_positions")
        encoded = encoder({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")})
        logits = self.mlm_head(encoded["sequence_output"], inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        # (encoder and activation are stored above: the head needs them before the graph.)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "activation": self.activation,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
