"""SavedModel export for TensorFlow Serving: strings in, labels out, tokenizer in the graph.

`export(run_dir, name)` writes two SavedModels, each in TF Serving's layout (an integer
version folder, the next free one, written to a hidden temporary folder and renamed into
place, so a server never sees half an export and two exports never share a version):

    saved_models/NAME/N/       serving_default = serve_text (strings in), and serve (ids in).
                               Needs tensorflow-text ops: TF Serving >= 2.20.
      assets/vocab.txt, assets/labels.txt
      assets.extra/tf_serving_warmup_requests   a few serve_text requests TF Serving replays
                                                (warmup.py)
      assets.extra/op_audit.json                every op type of each signature (audit.py)
    saved_models/NAME-ids/N/   serve only (integer ids in): core TensorFlow ops, loadable by
                               any TF Serving and by a process without tensorflow_text
                               (one tensorflow-text op anywhere in a SavedModel makes it
                               unloadable there).

Each holds the model's weights and nothing else: the run's model is loaded uncompiled
(`runs.load_finetuned`, `runs.load_masked_lm`), so no optimizer variable is tracked, even
from a `.keras` file of an older version that holds one.

Signatures (B = batch, L = sequence length, C = classes, W = words, E = entities, P = masks):

    serve        token_ids, segment_ids, padding_mask int32 [B, L]
                 (+ mask_positions int32 [B, P] for fill-mask)
                 -> logits, probabilities float32 [B, C] / [B, L, C] / [B, P, V]
    serve_text   text string [B] (and text_pair string [B] for a sentence-pair run)
      sentiment  -> label string [B], label_id int32 [B], probabilities float32 [B, C]
      classify   (the same outputs; a pair run takes `text` and `text_pair`, laid out
                 `[CLS] text [SEP] text_pair [SEP]` with segment ids 0 / 1, as in training)
      ner        -> words, tags string [B, W] (padded with ""), entity_text, entity_type
                    string [B, E], entity_start, entity_end int32 [B, E] (byte offsets into
                    the input, end exclusive; padded with ""/-1), num_words, num_entities
                    int32 [B]
      fill_mask  -> tokens string [B, P, K], probabilities float32 [B, P, K] (top K for each
                    "[MASK]" in the text, padded with ""/0), num_masks int32 [B]

`serve_text` tokenizes and lays out `[CLS] pieces [SEP]` with the functions training uses
(`packing.build_sequences`, and the NER windows of `finetuning_data.sentence_windows`).
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

import tensorflow as tf
import tensorflow_text as tf_text

from tfmask import runs
from tfmask.serve import publishing
from tfmask.serve.audit import ExportError, audit
from tfmask.serve.warmup import write_warmup
from tfmask.text import finetuning_data
from tfmask.text.labels import PREFIX_CODES, label_codes
from tfmask.text.packing import build_sequences
from tfmask.text.tokenization import MASK

KINDS = ("sentiment", "classify", "ner", "fill_mask")
TOP_K = 5
# Prefix codes of IOB2/IOBES tags for the in-graph entity reader (`labels.label_codes`).
_O, _B, _I, _E, _S = (PREFIX_CODES[p] for p in "OBIES")


# ----------------------------------------------------------------------------------------------
# Pure graph functions
# ----------------------------------------------------------------------------------------------
def sanitize_utf8(text: tf.Tensor) -> tf.Tensor:
    """Invalid UTF-8 bytes -> U+FFFD, so every later op sees valid text."""
    return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def entity_chunks(prefix: tf.Tensor, type_id: tf.Tensor, num_words: tf.Tensor):
    """Entities of padded tag sequences, read with conlleval's rules (as `labels.entity_spans`,
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


# ----------------------------------------------------------------------------------------------
# Serving modules
# ----------------------------------------------------------------------------------------------
_IDS_SPEC = {name: tf.TensorSpec([None, None], tf.int32, name=name)
             for name in finetuning_data.INPUT_NAMES}
_MASK_POSITIONS_SPEC = tf.TensorSpec([None, None], tf.int32, name="mask_positions")
_TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
_TEXT_PAIR_SPEC = tf.TensorSpec([None], tf.string, name="text_pair")


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
    """`serve` plus `serve_text`: strings in, tokenized and packed in the graph.

    `pair=True` (a classify run on sentence pairs): `serve_text` takes `text` and `text_pair`.
    """

    def __init__(self, model, kind: str, tokenizer, labels: list[str],
                 max_sequence_length: int, vocab_path: str, labels_path: str | None,
                 truncation: str = "head", window_stride: int | None = None,
                 top_k: int = TOP_K, pair: bool = False):
        super().__init__(model, kind)
        self.pair = bool(pair)
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
            prefix, type_ids, types = label_codes(labels)
            self.label_prefix = tf.constant(prefix, tf.int32)
            self.label_type = tf.constant(type_ids, tf.int32)
            self.types = tf.constant(types or [""], tf.string)
        if self.pair and kind not in ("sentiment", "classify"):
            raise ExportError(f"a {kind} model takes one text, not pairs")
        if self.pair:
            self.serve_text = tf.function(self._sentence_pair,
                                          input_signature=[_TEXT_SPEC, _TEXT_PAIR_SPEC])
        else:
            body = {"sentiment": self._sentiment, "classify": self._sentiment, "ner": self._ner,
                    "fill_mask": self._fill_mask}
            self.serve_text = tf.function(body[kind], input_signature=[_TEXT_SPEC])

    def _pack(self, pieces, truncation="head", pieces_pair=None):
        """[B, (n)] pieces (and the second segment's) -> the encoder's inputs, truncated as in
        training, padded to the longest (at least 2 wide: an empty batch densifies to width 0,
        the pooler reads position 0)."""
        t = self.tokenizer
        return build_sequences(pieces, pieces_pair, cls_token_id=t.cls_token_id,
                               sep_token_id=t.sep_token_id, pad_token_id=t.pad_token_id,
                               max_sequence_length=self.max_sequence_length,
                               truncation=truncation)

    def _pieces(self, text):
        return self.tokenizer.tokenize_words(sanitize_utf8(text)).merge_dims(1, 2)

    # --- sentiment, classify -----------------------------------------------------------------
    def _sentiment(self, text):
        return self._classify(self._pack(self._pieces(text), self.truncation))

    def _sentence_pair(self, text, text_pair):
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(text), tf.shape(text_pair),
                message="text and text_pair must hold the same number of strings")]):
            first = self._pieces(text)
        return self._classify(self._pack(first, self.truncation, self._pieces(text_pair)))

    def _classify(self, inputs):
        logits = self.model(inputs, training=False)
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
        pieces = finetuning_data.word_pieces(words, t)  # [B, (W), (P)]
        windows = finetuning_data.sentence_windows(
            pieces, tf.zeros_like(words, tf.int32), self.max_sequence_length, t.cls_token_id,
            t.sep_token_id, self.window_stride, pad_token_id=t.pad_token_id)  # [K, L] each
        logits = self.model({k: windows[k] for k in finetuning_data.INPUT_NAMES},
                            training=False)  # [K, L, C]
        # Each word's prediction from the one window that owns it (as `merge_windows`).
        owned = tf.where(windows["label_weights"] > 0)  # [N, 2] (window, position)
        word = tf.gather_nd(windows["word_ids"], owned)
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
            tf.fill([tf.reduce_sum(tf.cast(~last, tf.int32))], t.mask_token_id),
            tf.cast(~last, tf.int64))  # [B*S, (0 or 1)]
        ids = segments.with_flat_values(tf.concat([pieces, marker], axis=1)).merge_dims(1, 2)
        inputs = self._pack(ids)  # [B, L]
        is_mask = tf.equal(inputs["token_ids"], t.mask_token_id)  # never a special or padding
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(tf.range(tf.shape(is_mask)[1]), tf.shape(is_mask)),
            is_mask)  # [B, (P)]
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
    experiment, model, tokenizer = runs.load_finetuned(run_dir)
    d = experiment.data
    return (model, tokenizer, experiment.labels, d.max_sequence_length, d.truncation,
            d.window_stride)


next_version = publishing.next_version


def load_text_module(run_dir: str, top_k: int = TOP_K) -> TextModule:
    """The `TextModule` of a pretraining (fill-mask), NER or sentiment run: what `export`
    saves, and what `tfmask.load_predictor` calls in-process."""
    kind = _run_kind(run_dir)
    model, tokenizer, labels, max_len, truncation, stride = _load(run_dir, kind)
    labels_path = os.path.join(run_dir, "labels.txt") if labels else None
    return TextModule(model, kind, tokenizer, labels, max_len,
                      os.path.join(run_dir, "vocab.txt"), labels_path, truncation, stride,
                      top_k, pair=is_pair_run(run_dir))


def is_pair_run(run_dir: str) -> bool:
    """Whether a run classifies sentence pairs: its config names a `text_pair_column`."""
    config = runs.read_config(run_dir)
    return bool(config.get("data", {}).get("text_pair_column"))


def export(run_dir: str, name: str, base_dir: str = "saved_models", top_k: int = TOP_K
           ) -> dict:
    """Exports a pretraining (fill-mask), NER or sentiment run; see the module docstring.

    Returns: {"kind", "text": {"path", "version"}, "ids": {"path", "version"}, "audit"}.
    """
    publishing.check_name(name)
    text_module = load_text_module(run_dir, top_k)
    kind, model = text_module.kind, text_module.model
    if kind == "fill_mask" and top_k > text_module.tokenizer.vocabulary_size:
        raise ExportError(f"--top-k {top_k} exceeds the vocabulary of {run_dir} "
                          f"({text_module.tokenizer.vocabulary_size} tokens)")
    ids_spec = dict(_IDS_SPEC)
    if kind == "fill_mask":
        ids_spec["mask_positions"] = _MASK_POSITIONS_SPEC
    serve = text_module.serve.get_concrete_function(ids_spec)
    serve_text = text_module.serve_text.get_concrete_function()
    report = audit({"serve": serve, "serve_text": serve_text})
    if not report["serve"]["core_ops_only"]:
        raise ExportError("serve uses tensorflow-text ops "
                          f"{report['serve']['tensorflow_text_ops']}")

    def extras(directory):
        write_warmup(directory, name, kind, pair=text_module.pair)
        with open(os.path.join(directory, "assets.extra", "op_audit.json"), "w") as fh:
            json.dump({"kind": kind, "signatures": report,
                       "tensorflow": tf.__version__, "tensorflow_text": tf_text.__version__},
                      fh, indent=1)

    # Both SavedModels are written to hidden staging folders, then renamed into place with
    # one version number (`publishing`): a kill or a full disk publishes nothing.
    text_dir, ids_dir = os.path.join(base_dir, name), os.path.join(base_dir, f"{name}-ids")
    ids_module = IdsModule(model, kind)
    with publishing.disk_errors(base_dir), publishing.staging(text_dir) as text_tmp, \
            publishing.staging(ids_dir) as ids_tmp:
        tf.saved_model.save(text_module, text_tmp, signatures={
            "serving_default": serve_text, "serve_text": serve_text, "serve": serve})
        extras(text_tmp)
        tf.saved_model.save(ids_module, ids_tmp, signatures={
            "serving_default": ids_module.serve.get_concrete_function(ids_spec),
            "serve": ids_module.serve.get_concrete_function(ids_spec)})
        version = publishing.publish_pair(text_tmp, text_dir, ids_tmp, ids_dir)
    result = {"kind": kind,
              "text": {"path": os.path.join(text_dir, str(version)), "version": version},
              "ids": {"path": os.path.join(ids_dir, str(version)), "version": version},
              "audit": report}
    try:
        runs.record_export(run_dir, name, result)  # `tfmask show RUN` lists it
    except OSError:  # a read-only run directory: the export itself is done
        pass
    return result

