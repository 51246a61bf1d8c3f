"""TF Serving warm-up requests: `assets.extra/tf_serving_warmup_requests` of an export.

TF Serving replays the records of that file when it loads a model, so the first real request
does not pay for tracing and kernel selection. Each record is a serialized
`tensorflow.serving.PredictionLog`; the few fields needed are encoded here by hand (protobuf
wire format), so writing one needs no extra package:

    PredictionLog.predict_log (6) -> PredictLog.request (1) -> PredictRequest{
        model_spec (1): ModelSpec{name (1), signature_name (3)},
        inputs (2): map<string, TensorProto>}
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

#: The texts of each kind's warm-up request (an empty NER text included: the edge case).
WARMUP_TEXTS = {
    "sentiment": ["a gripping , funny and moving film .", "dull and far too long ."],
    "classify": ["a gripping , funny and moving film .", "dull and far too long ."],
    "ner": ["Peter Blackburn visited the European Commission in Brussels .", ""],
    "fill_mask": ["the capital of france is [MASK] .", "[MASK] [MASK] and a [MASK] ."],
}
#: The second texts of a sentence-pair model's warm-up request (`text_pair`).
WARMUP_TEXT_PAIRS = ["the film is worth seeing .", ""]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def warmup_record(model_name: str, signature: str, inputs: dict[str, np.ndarray]) -> bytes:
    """A serialized `tensorflow.serving.PredictionLog` holding one `PredictRequest` (see the
    module docstring for the fields)."""
    spec = _field(1, model_name.encode()) + _field(3, signature.encode())
    request = _field(1, spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def write_warmup(directory: str, model_name: str, kind: str, pair: bool = False) -> str:
    """Writes one `serving_default` request of `WARMUP_TEXTS[kind]` (with `WARMUP_TEXT_PAIRS`
    as `text_pair` for a sentence-pair model) into the SavedModel `directory`; returns the
    file's path."""
    path = os.path.join(directory, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    inputs = {"text": np.array(WARMUP_TEXTS[kind], dtype=object)}
    if pair:
        inputs["text_pair"] = np.array(WARMUP_TEXT_PAIRS, dtype=object)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(warmup_record(model_name, "serving_default", inputs))
    return path
