"""The Keras model: layers, the functional `BertEncoder`, and the heads that wrap it.

Integer tensors in, logits out: keras and TensorFlow core only (no tensorflow-text, no
tf.data), so a SavedModel of these needs nothing beyond TensorFlow to serve. Every class is
registered with Keras as `tfmask>ClassName`.
"""

from tfmask.model.encoder import BertEncoder, bert_initializer  # noqa: F401
from tfmask.model.heads import MaskedLM, SequenceClassifier, TokenClassifier  # noqa: F401
from tfmask.model.layers import MaskedLMHead, PositionEmbedding, TransformerBlock  # noqa: F401
