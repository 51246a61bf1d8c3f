"""Task models that wrap a `BertEncoder`: `MaskedLM`, `TokenClassifier`, `SequenceClassifier`."""

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


class _ClassifierBase(keras.Model):
    """Dropout + dense logits on one encoder output; subclasses name the output and the count.

    Subclasses set `_output` ("sequence_output" or "pooled_output") and `_count_name` (the
    constructor argument holding the number of classes)."""

    _output: str
    _count_name: str

    def __init__(self, encoder, count: int, dropout: float = 0.1, **kwargs):
        # === Layers ===
        self.encoder = encoder
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout",
                                                   dtype=encoder.dtype_policy)
        self.logits_dense = keras.layers.Dense(
            count, kernel_initializer=bert_initializer(), name="logits",
            dtype=encoder.dtype_policy)

        # === Functional Model ===
        inputs = dict(encoder.input)
        x = encoder(inputs)[self._output]
        logits = self.logits_dense(self.output_dropout(x))
        # float32 logits under mixed precision: a stable softmax and loss.
        logits = keras.layers.Activation("linear", dtype="float32", name="float_logits")(logits)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        setattr(self, self._count_name, int(count))
        self.dropout = float(dropout)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            self._count_name: getattr(self, self._count_name),
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfmask")
class TokenClassifier(_ClassifierBase):
    """Token classification (NER): a label per word piece from the encoder's sequence output.

    Args:
      encoder: a `BertEncoder`.
      num_labels: number of tags (e.g. 9 for CoNLL-2003 in IOB2).
      dropout: dropout on the sequence output before the classifier.

    Inputs: the encoder's inputs (`token_ids`, `segment_ids`, `padding_mask`, [B, L] int32).
    Outputs: [B, L, num_labels] float32 logits. Train with `y` = label ids [B, L] and
    `sample_weight` 1 on the first piece of each word, 0 elsewhere (see
    `tfmask.finetune_data`), `SparseCategoricalCrossentropy(from_logits=True)`.
    """

    _output = "sequence_output"
    _count_name = "num_labels"

    def __init__(self, encoder, num_labels: int, dropout: float = 0.1, **kwargs):
        super().__init__(encoder, num_labels, dropout, **kwargs)


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
    _count_name = "num_classes"

    def __init__(self, encoder, num_classes: int, dropout: float = 0.1, **kwargs):
        super().__init__(encoder, num_classes, dropout, **kwargs)
