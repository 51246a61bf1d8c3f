"""SavedModel export for TensorFlow Serving: strings in, labels out, tokenizer in the graph.

`export(run_dir, name)` writes two SavedModels, each in TF Serving's layout (an integer
version folder, the next free one, written to a hidden temporary folder and renamed into
place, so a server never sees half an export and two exports never share a version):

    saved_models/NAME/N/       serving_default = serve_text (strings in), and serve (ids in).
                               Needs tensorflow-text ops: TF Serving >= 2.20.
      assets/vocab.txt, assets/labels.txt
      assets.extra/tf_serving_warmup_requests   a few serve_text requests TF Serving replays
      assets.extra/op_audit.json                every op type of each signature
    saved_models/NAME-ids/N/   serve only (integer ids in): core TensorFlow ops, loadable by
                               any TF Serving and by a process without tensorflow_text
                               (CLARIFICATIONS: one tensorflow-text op anywhere in a SavedModel
                               makes it unloadable there).

Signatures (B = batch, L = sequence length, C = classes, W = words, E = entities, P = masks):

    serve        token_ids, segment_ids, padding_mask int32 [B, L]
                 (+ mask_positions int32 [B, P] for fill-mask)
                 -> logits, probabilities float32 [B, C] / [B, L, C] / [B, P, V]
    serve_text   text string [B]
      sentiment  -> label string [B], label_id int32 [B], probabilities float32 [B, C]
      ner        -> words, tags string [B, W] (padded with ""), entity_text, entity_type
                    string [B, E], entity_start, entity_end int32 [B, E] (byte offsets into
                    the input, end exclusive; padded with ""/-1), num_words, num_entities
                    int32 [B]
      fill_mask  -> tokens string [B, P, K], probabilities float32 [B, P, K] (top K for each
                    "[MASK]" in the text, padded with ""/0), num_masks int32 [B]

NER words are the input's whitespace-separated tokens, exactly the "words" of a CoNLL line
that `tfmask evaluate` scores, each tokenized like training (BERT basic split + WordPiece on
the word); long inputs go through the same overlapping windows, so `serve_text` on a
space-joined CoNLL sentence gives the tags `tfmask evaluate` computed for it. Invalid UTF-8
bytes are replaced by U+FFFD (3 bytes) before anything else; offsets refer to that text,
which is the input itself whenever the input is valid UTF-8.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfmask import finetune_data, runs
from tfmask.tokenization import MASK

KINDS = ("sentiment", "ner", "fill_mask")
TOP_K = 5
#: tensorflow-text ops that TF Serving 2.12-2.19 (which link tensorflow-text 2.12.1) lack.
MISSING_BEFORE_SERVING_2_20 = ("TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks",
                               "TFText>Utf8Binarize")
_PY_FUNCTION_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
#: Prefix codes of IOB2/IOBES tags for the in-graph entity reader.
_O, _B, _I, _E, _S = range(5)


class ExportError(ValueError):
    """The run cannot be exported (or the export would not be servable)."""


# ----------------------------------------------------------------------------------------------
# Pure graph functions
# ----------------------------------------------------------------------------------------------
def sanitize_utf8(text: tf.Tensor) -> tf.Tensor:
    """Invalid UTF-8 bytes -> U+FFFD, so every later op sees valid text."""
    return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def dense_inputs(token_ids: tf.RaggedTensor, pad_id: int) -> dict:
    """[B, (n)] ids -> the encoder's padded inputs, at least 2 wide (an empty batch densifies
    to width 0, and the pooler reads position 0)."""
    lengths = tf.concat([tf.cast(token_ids.row_lengths(), tf.int32), [2]], axis=0)
    width = tf.reduce_max(lengths)
    shape = tf.stack([tf.shape(token_ids.row_splits)[0] - 1, width])

    def dense(x, value):
        return x.to_tensor(value, shape=tf.cast(shape, tf.int64))

    return {"token_ids": dense(tf.cast(token_ids, tf.int32), pad_id),
            "segment_ids": dense(tf.zeros_like(token_ids, tf.int32), 0),
            "padding_mask": dense(tf.ones_like(token_ids, tf.int32), 0)}


def pack(pieces: tf.RaggedTensor, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """[B, (n)] pieces -> the encoder's inputs `[CLS] pieces [SEP]`, padded to the longest."""
    batch = tf.shape(pieces.row_splits)[0] - 1
    ids = tf.concat([tf.fill([batch, 1], cls_id), tf.cast(pieces, tf.int32),
                     tf.fill([batch, 1], sep_id)], axis=1)
    return dense_inputs(ids, pad_id)


def entity_chunks(prefix: tf.Tensor, type_id: tf.Tensor, num_words: tf.Tensor):
    """Entities of padded tag sequences, read with conlleval's rules (as `metrics.entity_spans`,
    which is tested equal to seqeval's default mode).

    Args:
      prefix: int32 [B, W] tag prefix codes (O=0, B=1, I=2, E=3, S=4); padding is ignored.
      type_id: int32 [B, W] entity type index (-1 for O).
      num_words: int32 [B] real words per row.

    Returns:
      (row, start, end, type) int32 [N] each: the entities of all rows, `end` exclusive.
    """
    width = tf.shape(prefix)[1]
    valid = tf.range(width)[None, :] < num_words[:, None]
    prefix = tf.where(valid, prefix, _O)
    type_id = tf.where(valid, type_id, -1)
    # A sentinel "O" after the last word closes a chunk that runs to the end.
    cur_prefix = tf.pad(prefix, [[0, 0], [0, 1]])
    cur_type = tf.pad(type_id, [[0, 0], [0, 1]], constant_values=-1)
    prev_prefix = tf.pad(prefix, [[0, 0], [1, 0]])
    prev_type = tf.pad(type_id, [[0, 0], [1, 0]], constant_values=-1)

    def isin(x, codes):
        return tf.reduce_any(tf.stack([tf.equal(x, c) for c in codes]), axis=0)

    ends = (isin(prev_prefix, (_E, _S))
            | (isin(prev_prefix, (_B, _I)) & isin(cur_prefix, (_B, _S, _O)))
            | ((prev_prefix != _O) & (prev_type != cur_type)))  # a chunk ended before i
    starts = (isin(cur_prefix, (_B, _S))
              | (isin(prev_prefix, (_E, _S, _O)) & isin(cur_prefix, (_E, _I)))
              | ((cur_prefix != _O) & (prev_type != cur_type)))  # a chunk starts at i
    start_at = tf.cast(tf.where(starts), tf.int32)  # [N, 2] (row, position)
    # Each chunk ends at the first boundary after its start: search the boundaries of its row.
    big = width + 1
    boundary = tf.where(ends, tf.range(width + 1)[None, :], big)  # [B, W + 1]
    boundary = tf.sort(boundary, axis=1)
    row_boundaries = tf.gather(boundary, start_at[:, 0])  # [N, W + 1]
    index = tf.searchsorted(row_boundaries, start_at[:, 1:2], side="right")  # [N, 1]
    end = tf.gather(row_boundaries, index, batch_dims=1)[:, 0]
    chunk_type = tf.gather_nd(type_id, start_at)
    return start_at[:, 0], start_at[:, 1], end, chunk_type


def _pad_rows(values: tf.Tensor, rows: tf.Tensor, batch: tf.Tensor, pad) -> tf.Tensor:
    """Values grouped by (sorted) row index -> [batch, max per row] padded with `pad`."""
    counts = tf.math.bincount(rows, minlength=batch, maxlength=batch, dtype=tf.int64)
    return tf.RaggedTensor.from_row_lengths(values, counts).to_tensor(pad)


def _label_codes(labels: list[str]) -> tuple[list[int], list[int], list[str]]:
    """Prefix code and type index of each label (IOB2/IOBES names), and the type names."""
    types = sorted({label[2:] for label in labels if label != "O"})
    prefix = [_O if label == "O" else "OBIES".index(label[0]) for label in labels]
    type_ids = [-1 if label == "O" else types.index(label[2:]) for label in labels]
    return prefix, type_ids, types


# ----------------------------------------------------------------------------------------------
# Serving modules
# ----------------------------------------------------------------------------------------------
_IDS_SPEC = {name: tf.TensorSpec([None, None], tf.int32, name=name)
             for name in finetune_data.INPUT_NAMES}
_MASK_POSITIONS_SPEC = tf.TensorSpec([None, None], tf.int32, name="mask_positions")
_TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")


class IdsModule(tf.Module):
    """The model behind a `serve` signature: integer ids in, logits and probabilities out."""

    def __init__(self, model, kind: str):
        super().__init__()
        self.model = model
        self.kind = kind
        spec = dict(_IDS_SPEC)
        if kind == "fill_mask":
            spec["mask_positions"] = _MASK_POSITIONS_SPEC
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}


class TextModule(IdsModule):
    """`serve` plus `serve_text`: strings in, tokenized and packed in the graph."""

    def __init__(self, model, kind: str, tokenizer, labels: list[str],
                 max_sequence_length: int, vocab_path: str, labels_path: str | None,
                 truncation: str = "head", window_stride: int | None = None,
                 top_k: int = TOP_K):
        super().__init__(model, kind)
        self.tokenizer = tokenizer
        self.max_sequence_length = int(max_sequence_length)
        self.truncation = truncation
        self.window_stride = window_stride
        self.top_k = int(top_k)
        self.vocab_asset = tf.saved_model.Asset(vocab_path)
        if labels_path:
            self.labels_asset = tf.saved_model.Asset(labels_path)
        self.labels = tf.constant(labels or [""], tf.string)
        self.vocab = tf.constant(tokenizer.vocab, tf.string)
        if kind == "ner":
            prefix, type_ids, types = _label_codes(labels)
            self.label_prefix = tf.constant(prefix, tf.int32)
            self.label_type = tf.constant(type_ids, tf.int32)
            self.types = tf.constant(types or [""], tf.string)
        body = {"sentiment": self._sentiment, "ner": self._ner, "fill_mask": self._fill_mask}
        self.serve_text = tf.function(body[kind], input_signature=[_TEXT_SPEC])

    # --- sentiment ---------------------------------------------------------------------------
    def _sentiment(self, text):
        t = self.tokenizer
        pieces = t.tokenize_words(sanitize_utf8(text)).merge_dims(1, 2)  # [B, (n)]
        pieces = finetune_data.truncate_pieces(pieces, self.max_sequence_length - 2,
                                               self.truncation)
        logits = self.model(pack(pieces, t.cls_id, t.sep_id, t.pad_id), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)  # [B, C]
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"label": tf.gather(self.labels, label_id), "label_id": label_id,
                "probabilities": probabilities}

    # --- NER ---------------------------------------------------------------------------------
    def _ner(self, text):
        t = self.tokenizer
        batch = tf.shape(text)[0]
        # One extra empty text: the windowing loop cannot stack zero windows (empty batch).
        text = tf.concat([sanitize_utf8(text), [""]], axis=0)
        words, starts, ends = tf_text.WhitespaceTokenizer().tokenize_with_offsets(text)
        pieces = finetune_data.word_pieces(words, t)  # [B, (W), (P)]
        windows = finetune_data.sentence_windows(
            pieces, tf.zeros_like(words, tf.int32), self.max_sequence_length, t.cls_id,
            t.sep_id, self.window_stride)
        logits = self.model(dense_inputs(windows["token_ids"], t.pad_id),
                            training=False)  # [K, L, C]
        # Each word's prediction from the one window that owns it (as `merge_windows`).
        owned = tf.where(windows["label_weights"].to_tensor(0.0) > 0)  # [N, 2] (window, pos)
        word = tf.gather_nd(windows["word_index"].to_tensor(-1), owned)
        sentence = tf.gather(windows["sentence"], owned[:, 0])
        flat_word = tf.gather(words.row_splits, sentence) + tf.cast(word, tf.int64)
        predicted = tf.argmax(tf.gather_nd(logits, owned), axis=-1, output_type=tf.int32)
        total = tf.shape(words.flat_values, out_type=tf.int64)[0]
        tag_ids = tf.scatter_nd(flat_word[:, None], predicted, [total])  # [total words]
        tag_ids = words.with_flat_values(tag_ids)  # [B, (W)]
        num_words = tf.cast(words.row_lengths(), tf.int32)
        tag_dense = tag_ids.to_tensor(0)
        row, first, end, type_index = entity_chunks(
            tf.gather(self.label_prefix, tag_dense), tf.gather(self.label_type, tag_dense),
            num_words)
        start_byte = tf.gather_nd(starts.to_tensor(0), tf.stack([row, first], 1))
        end_byte = tf.gather_nd(ends.to_tensor(0), tf.stack([row, end - 1], 1))
        entity_text = tf.strings.substr(tf.gather(text, row), start_byte,
                                        end_byte - start_byte, unit="BYTE")
        return {
            "words": words[:batch].to_tensor(""),
            "tags": tf.gather(self.labels, tag_ids)[:batch].to_tensor(""),
            "num_words": num_words[:batch],
            "entity_text": _pad_rows(entity_text, row, batch, ""),
            "entity_type": _pad_rows(tf.gather(self.types, tf.maximum(type_index, 0)), row,
                                     batch, ""),
            "entity_start": _pad_rows(tf.cast(start_byte, tf.int32), row, batch, -1),
            "entity_end": _pad_rows(tf.cast(end_byte, tf.int32), row, batch, -1),
            "num_entities": tf.math.bincount(row, minlength=batch, maxlength=batch,
                                             dtype=tf.int32),
        }

    # --- fill-mask ---------------------------------------------------------------------------
    def _fill_mask(self, text):
        t = self.tokenizer
        # "[MASK]" would be split into "[", "mask", "]": cut the text at each marker,
        # tokenize the pieces between, and put the mask id back between them.
        batch = tf.shape(text)[0]
        # One extra text holding a [MASK]: the head's gather needs B >= 1 and P >= 1.
        text = tf.concat([sanitize_utf8(text), [MASK]], axis=0)
        segments = tf.strings.split(text, sep=MASK)  # [B, (S)]
        pieces = t.tokenize_words(segments.flat_values).merge_dims(1, 2)  # [B*S, (p)]
        last = tf.equal(tf.ragged.range(segments.row_lengths()).flat_values,
                        tf.gather(segments.row_lengths() - 1,
                                  segments.value_rowids()))  # [B*S]
        marker = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(~last, tf.int32))], t.mask_id),
            tf.cast(~last, tf.int64))  # [B*S, (0 or 1)]
        ids = segments.with_flat_values(tf.concat([pieces, marker], axis=1)).merge_dims(1, 2)
        ids = ids[:, : self.max_sequence_length - 2]  # [B, (n)]
        inputs = pack(ids, t.cls_id, t.sep_id, t.pad_id)
        positions = tf.ragged.boolean_mask(
            tf.ragged.range(ids.row_lengths()) + 1, tf.equal(ids, t.mask_id))  # [B, (P)]
        inputs["mask_positions"] = tf.cast(positions.to_tensor(0), tf.int32)
        logits = tf.cast(self.model(inputs, training=False), tf.float32)  # [B, P, V]
        probabilities, top = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=self.top_k)
        num_masks = tf.cast(positions.row_lengths(), tf.int32)[:batch]
        width = tf.reduce_max(tf.concat([num_masks, [0]], axis=0))
        real = tf.sequence_mask(num_masks, width)[..., None]
        return {"tokens": tf.where(real, tf.gather(self.vocab, top[:batch, :width]), ""),
                "probabilities": tf.where(real, probabilities[:batch, :width], 0.0),
                "num_masks": num_masks}


# ----------------------------------------------------------------------------------------------
# Op audit
# ----------------------------------------------------------------------------------------------
def graph_op_types(concrete_function) -> set[str]:
    """Every op type in a concrete function's graph, nested functions included."""
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    called = {f.signature.name for f in graph_def.library.function}
    return ops - called  # calls of library functions are not op types


def is_registered(op_type: str) -> bool:
    """Whether this process has a kernel registry entry for `op_type` (TensorFlow's own ops,
    plus those of the custom-op libraries loaded: here only tensorflow-text's)."""
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(op_type) is not None


def audit(functions: dict) -> dict:
    """Op types per signature, the tensorflow-text ones, and what that needs of TF Serving.

    Raises:
      ExportError: a `py_function` (no server can run one) or an op that neither TensorFlow
        nor tensorflow-text registers.
    """
    core = set(dir(tf.raw_ops))
    report = {}
    for name, function in functions.items():
        ops = graph_op_types(function)
        python = sorted(ops & _PY_FUNCTION_OPS)
        if python:
            raise ExportError(f"signature {name!r} calls Python ({python}): TF Serving cannot "
                              "run it; keep preprocessing in TensorFlow ops")
        custom = sorted(ops - core)
        unknown = [op for op in custom if not is_registered(op)]
        if unknown:
            raise ExportError(f"signature {name!r} uses ops no TF Serving build has: {unknown}")
        missing_old = sorted(set(custom) & set(MISSING_BEFORE_SERVING_2_20))
        report[name] = {
            "ops": sorted(ops),
            "tensorflow_text_ops": custom,
            "core_ops_only": not custom,
            "min_tf_serving": "any" if not custom else "2.20",
            "tf_serving_2_12_to_2_19_lack": missing_old,
        }
    return report


# ----------------------------------------------------------------------------------------------
# Warm-up requests (TF Serving's PredictionLog TFRecords, encoded by hand: no extra package)
# ----------------------------------------------------------------------------------------------
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
    """A serialized `tensorflow.serving.PredictionLog` holding one `PredictRequest`.

    PredictionLog.predict_log (6) -> PredictLog.request (1) -> PredictRequest{model_spec (1):
    ModelSpec{name (1), signature_name (3)}, inputs (2): map<string, TensorProto>}.
    """
    spec = _field(1, model_name.encode()) + _field(3, signature.encode())
    request = _field(1, spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


WARMUP_TEXTS = {
    "sentiment": ["a gripping , funny and moving film .", "dull and far too long ."],
    "ner": ["Peter Blackburn visited the European Commission in Brussels .", ""],
    "fill_mask": ["the capital of france is [MASK] .", "[MASK] [MASK] and a [MASK] ."],
}


def write_warmup(directory: str, model_name: str, kind: str) -> str:
    path = os.path.join(directory, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(warmup_record(model_name, "serving_default",
                                   {"text": np.array(WARMUP_TEXTS[kind], dtype=object)}))
    return path


# ----------------------------------------------------------------------------------------------
# export()
# ----------------------------------------------------------------------------------------------
def _run_kind(run_dir: str) -> str:
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        return runs.read_config(run_dir)["task"]
    if os.path.exists(os.path.join(run_dir, "masked_lm.keras")):
        return "fill_mask"
    if not os.path.isdir(run_dir):
        raise ExportError(f"{run_dir}: no such run directory")
    raise ExportError(f"{run_dir}: nothing to export (no model.keras from tfmask finetune, no "
                      "masked_lm.keras from tfmask pretrain or an import with an MLM head)")


def _load(run_dir: str, kind: str):
    """(model, tokenizer, labels, max_sequence_length, truncation, window_stride)."""
    if kind == "fill_mask":
        config = runs.read_config(run_dir)
        positions = config["encoder"]["max_sequence_length"]
        # A pretraining run's sequence length; an imported checkpoint's full position table.
        max_len = min(config.get("data", {}).get("max_sequence_length", positions), positions)
        return (runs.load_masked_lm(run_dir), runs.load_tokenizer(run_dir), [], max_len, "head",
                None)
    from tfmask.finetuning import load_finetuned

    experiment, model, tokenizer = load_finetuned(run_dir)
    d = experiment.data
    return (model, tokenizer, experiment.labels, d.max_sequence_length, d.truncation,
            d.window_stride)


def next_version(model_dir: str) -> int:
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()] if os.path.isdir(
        model_dir) else []
    return max(versions, default=0) + 1


def _publish(tmp: str, model_dir: str) -> tuple[int, str]:
    """Renames `tmp` to the next free version of `model_dir`; a version taken meanwhile by a
    parallel export (rename onto a non-empty folder fails) moves on to the next one."""
    while True:
        version = next_version(model_dir)
        target = os.path.join(model_dir, str(version))
        try:
            os.rename(tmp, target)
            return version, target
        except OSError:
            if not os.path.isdir(target):
                raise


def _save(module, signatures: dict, model_dir: str, extra=None) -> tuple[int, str]:
    os.makedirs(model_dir, exist_ok=True)
    # Hidden, in the same folder (same file system: the rename is atomic); TF Serving only
    # looks at integer folder names.
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir)
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        if extra:
            extra(tmp)
        return _publish(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export(run_dir: str, name: str, base_dir: str = "saved_models", top_k: int = TOP_K
           ) -> dict:
    """Exports a pretraining (fill-mask), NER or sentiment run; see the module docstring.

    Returns: {"kind", "text": {"path", "version"}, "ids": {"path", "version"}, "audit"}.
    """
    if not name or os.sep in name or name.startswith("."):
        raise ExportError(f"--name {name!r}: give a plain folder name, e.g. sentiment")
    kind = _run_kind(run_dir)
    model, tokenizer, labels, max_len, truncation, stride = _load(run_dir, kind)
    labels_path = os.path.join(run_dir, "labels.txt") if labels else None
    text_module = TextModule(model, kind, tokenizer, labels, max_len,
                             os.path.join(run_dir, "vocab.txt"), labels_path, truncation,
                             stride, top_k)
    ids_spec = dict(_IDS_SPEC)
    if kind == "fill_mask":
        ids_spec["mask_positions"] = _MASK_POSITIONS_SPEC
    serve = text_module.serve.get_concrete_function(ids_spec)
    serve_text = text_module.serve_text.get_concrete_function(_TEXT_SPEC)
    report = audit({"serve": serve, "serve_text": serve_text})
    if not report["serve"]["core_ops_only"]:
        raise ExportError(f"serve uses tensorflow-text ops {report['serve']['tensorflow_text_ops']}")

    def extras(directory):
        write_warmup(directory, name, kind)
        with open(os.path.join(directory, "assets.extra", "op_audit.json"), "w") as fh:
            json.dump({"kind": kind, "signatures": report,
                       "tensorflow": tf.__version__, "tensorflow_text": tf_text.__version__},
                      fh, indent=1)

    text_version, text_path = _save(
        text_module, {"serving_default": serve_text, "serve_text": serve_text,
                      "serve": serve}, os.path.join(base_dir, name), extras)
    ids_module = IdsModule(model, kind)
    ids_version, ids_path = _save(
        ids_module, {"serving_default": ids_module.serve.get_concrete_function(ids_spec),
                     "serve": ids_module.serve.get_concrete_function(ids_spec)},
        os.path.join(base_dir, f"{name}-ids"))
    return {"kind": kind, "text": {"path": text_path, "version": text_version},
            "ids": {"path": ids_path, "version": ids_version}, "audit": report}

