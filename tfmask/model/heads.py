"""Task models that wrap a `BertEncoder`: `MaskedLM`, `TokenClassifier`, `SequenceClassifier`."""

from __future__ import annotations

import keras

from tfmask.model.encoder import BertEncoder, bert_initializer
from tfmask.model.layers import MaskedLMHead, ReplicaDropout


class _EncoderTask(keras.Model):
    """A task model around a `BertEncoder`: the config code every head shares.

    The head's dtype policy is the encoder's, so the config keeps the encoder (serialized
    whole, weights come from the `.keras` file) and leaves out a `dtype` of its own.
    """

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype
        config.pop("dtype", None)
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfmask")
class MaskedLM(_EncoderTask):
    """BERT masked-language model: encoder + MLM head at `mask_positions`.

    The head's output projection is the encoder's token embedding (tied), so the model has no
    `[H, V]` matrix of its own, as in BERT.

    Args:
      encoder: a `BertEncoder`.
      activation: activation of the head's dense layer (defaults to the encoder's).

    Inputs (dict): the encoder's inputs plus `mask_positions` [B, P] int32.
    Outputs: [B, P, V] float32 logits over the vocabulary at each masked position.

    Train with `y = mask_ids` [B, P] and `sample_weight = mask_weights` [B, P] (see
    `tfmask.text.pretraining_data.pretraining_dataset`), `SparseCategoricalCrossentropy(from_logits=True)` and
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
        config = super().get_config()
        config.update(activation=self.activation)
        return config


class _ClassifierBase(_EncoderTask):
    """Dropout + dense logits over `num_classes` on one encoder output (`_output`:
    "sequence_output" for a label per piece, "pooled_output" for one per sequence)."""

    _output: str

    def __init__(self, encoder, num_classes: int, dropout: float = 0.1, **kwargs):
        # === Layers ===
        self.encoder = encoder
        self.output_dropout = ReplicaDropout(dropout, name="output_dropout",
                                             dtype=encoder.dtype_policy)
        self.logits_dense = keras.layers.Dense(
            num_classes, kernel_initializer=bert_initializer(), name="logits",
            dtype=encoder.dtype_policy)

        # === Functional Model ===
        inputs = dict(encoder.input)
        x = encoder(inputs)[self._output]
        logits = self.logits_dense(self.output_dropout(x))
        # float32 logits under mixed precision: a stable softmax and loss.
        logits = keras.layers.Activation("linear", dtype="float32", name="float_logits")(logits)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout=self.dropout)
        return config


@keras.saving.register_keras_serializable(package="tfmask")
class TokenClassifier(_ClassifierBase):
    """Token classification (NER): a label per word piece from the encoder's sequence output.

    Args:
      encoder: a `BertEncoder`.
      num_classes: number of tags (e.g. 9 for CoNLL-2003 in IOB2).
      dropout: dropout on the sequence output before the classifier.

    Inputs: the encoder's inputs (`token_ids`, `segment_ids`, `padding_mask`, [B, L] int32).
    Outputs: [B, L, num_classes] float32 logits. Train with `y` = label ids [B, L] and
    `sample_weight` 1 on the first piece of each word, 0 elsewhere (see
    `tfmask.text.finetuning_data`), `SparseCategoricalCrossentropy(from_logits=True)`.
    """

    _output = "sequence_output"

    def __init__(self, encoder, num_classes: int, dropout: float = 0.1, **kwargs):
        super().__init__(encoder, num_classes, dropout, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "num_labels" in config:  # the name in `.keras` files of tfmask 0.1
            config["num_classes"] = config.pop("num_labels")
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="tfmask")
class SequenceClassifier(_ClassifierBase):
    """Sequence classification (sentiment): pooled `[CLS]` state -> dropout -> dense logits.

    Args:
      encoder: a `BertEncoder`.
      num_classes: number of classes.
      dropout: dropout on the pooled output before the classifier.

    Inputs: the encoder's inputs ([B, L] int32 each).
    Outputs: [B, num_classes] float32 logits.
    """

    _output = "pooled_output"

    def __init__(self, encoder, num_classes: int, dropout: float = 0.1, **kwargs):
        super().__init__(encoder, num_classes, dropout, **kwargs)
