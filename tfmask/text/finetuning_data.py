"""Fine-tuning input pipelines: NER (token classification) and sentiment (sequence
classification), tokenized, windowed, padded and augmented inside the TensorFlow graph.

Both builders yield `(x, y, sample_weight)` batches whose `x` holds the encoder's inputs
`token_ids`, `segment_ids`, `padding_mask` ([B, L] int32, L = the longest sequence of the
batch, at most `max_sequence_length`):

    NER          words + label ids per sentence
                   -> pieces per word (basic split + WordPiece, [UNK] for an empty word)
                   -> overlapping windows of whole words (long sentences only)
                   -> [CLS] pieces [SEP]; label on each word's first piece
                   -> (optionally shuffled, bucketed by length) padded batch
                   -> (optionally) [MASK] augmentation with a fresh seed per batch
    sentiment    text (and text_pair) + label id
                   -> pieces, truncated ("head" or "head_tail"; a pair longest first)
                   -> [CLS] pieces [SEP] (pieces_pair [SEP], segment ids 1)
                   -> padded batch -> (optionally) [MASK] augmentation

`[CLS] pieces [SEP]` is `packing.build_sequences`, as in pretraining and serving; the
augmentation is `masking.mask_augment`.

Padding is per batch (`padded_batch`), or to the bound of a length bucket, not to
`max_sequence_length`: most CoNLL sentences are a fraction of 128 pieces.

Keras `fit` ignores `shuffle=True` for a `tf.data.Dataset`, so shuffling happens here:
seeded, and reshuffled every time the dataset is iterated (every epoch).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tfmask.text.masking import mask_augment_dataset
from tfmask.text.packing import TRUNCATIONS, build_sequences
from tfmask.text.tokenization import WordPieceTokenizer

#: The encoder's input names, which are the keys of every `x` built here.
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")

_TOKENIZE_BATCH = 256


# ----------------------------------------------------------------------------------------------
# Pure tensor functions
# ----------------------------------------------------------------------------------------------
def word_pieces(words, tokenizer: WordPieceTokenizer) -> tf.RaggedTensor:
    """Pre-split words -> their word pieces; every word gets at least one piece.

    A CoNLL "word" is not always one BERT word: BERT's basic tokenizer splits "U.S." into
    "u . s ." and "1,000" into "1 , 000", so each word goes through `tokenizer.split_words`
    and WordPiece, and all its pieces are concatenated. A word that yields no piece at all
    (only control or format characters, or only spaces) becomes `[UNK]`, so that it still
    has a first piece to carry its label.

    Args:
      words: [S, (W)] string `tf.RaggedTensor` (sentences of words) or a [W] string tensor.
      tokenizer: the `WordPieceTokenizer`.

    Returns:
      int32 `tf.RaggedTensor`, [S, (W), (P)] (or [W, (P)] for a [W] input), P >= 1.
    """
    if isinstance(words, tf.RaggedTensor):
        return words.with_flat_values(word_pieces(words.flat_values, tokenizer))
    words = tf.convert_to_tensor(words, tf.string)
    pieces = tokenizer.tokenize_words(words).merge_dims(1, 2)  # [W, (P)]
    empty = tf.equal(pieces.row_lengths(), 0)  # [W]
    num_empty = tf.math.count_nonzero(empty, dtype=tf.int32)
    unk = tf.RaggedTensor.from_row_lengths(
        tf.fill([num_empty], tf.constant(tokenizer.unk_token_id)),
        tf.cast(empty, tf.int64))  # [W, (0 or 1)]
    return tf.concat([pieces, unk], axis=1)


def sentence_windows(pieces: tf.RaggedTensor, label_ids: tf.RaggedTensor,
                     max_sequence_length: int, cls_token_id: int, sep_token_id: int,
                     window_stride: int | None = None, *, pad_token_id: int | None = None
                     ) -> dict[str, tf.Tensor]:
    """Sentences of word pieces -> `[CLS] pieces [SEP]` windows that label each word once.

    The window budget is `max_sequence_length - 2` pieces. A sentence that fits is one window.
    A longer one is cut into overlapping windows of whole words:

    - a word longer than the budget keeps its first `budget` pieces (its first piece, which
      carries the label, always survives);
    - window k starts at word `s_k` and holds the words that fit in the budget from there;
    - the next window starts at the last word that begins at most `window_stride` pieces after
      `s_k`'s first piece, but at least one word later and never after the first word the
      window left out (so no word falls between two windows);
    - the last window is the first one that reaches the end of the sentence.

    Each word is labelled (weight 1) in exactly one window, the one where it has the most
    context: its score in a window is the number of pieces between the word and the nearer
    window edge that cuts the sentence (a window edge at the sentence's start or end cuts
    nothing and does not count); ties go to the earlier window (the "max context" rule of
    BERT's SQuAD code, with words instead of tokens).

    Worked example, budget 4 (`max_sequence_length` 6), stride 2, words `a b c d e` with
    1, 2, 1, 1, 1 pieces (b = "b ##b"); `*` marks the window that labels the word:

        window 0   [CLS] a* b* ##b c  [SEP]      starts at a (piece 0)
        window 1   [CLS] b  ##b c* d  [SEP]      starts at b: the last word starting at or
                                                 before piece 0 + 2
        window 2   [CLS] c  d* e*     [SEP]      starts at c (piece 3 <= 1 + 2); reaches e

        c   window 0: 0 pieces to the cut after c;  window 1: min(2 left, 1 right) = 1;
            window 2: 0 pieces to the cut before c   -> window 1
        d   window 1: 0 to the right cut;  window 2: 1 to the left cut (no cut on the right)
            -> window 2

    Args:
      pieces: [S, (W), (P)] int32 pieces of each word of each sentence, P >= 1 (see
        `word_pieces`).
      label_ids: [S, (W)] int32 label id of each word.
      max_sequence_length: L, `[CLS]` and `[SEP]` included (>= 3).
      cls_token_id, sep_token_id: ids of `[CLS]` and `[SEP]`.
      window_stride: pieces between the starts of consecutive windows (1..budget); default
        `budget // 2`.
      pad_token_id: None: ragged windows, [K, (n)]. An id: windows padded to the longest,
        [K, M] (the encoder's inputs, as `packing.build_sequences` pads them).

    Returns:
      dict over the K windows of all sentences, sentence by sentence, K >= S (an empty
      sentence gives one `[CLS] [SEP]` window):
        token_ids (int32 [K, (n)]): `[CLS] pieces [SEP]`.
        labels (int32 [K, (n)]): the word's label on the first piece of a word, else 0.
        label_weights (float32 [K, (n)]): 1.0 on the first piece of each word in the window
          that owns it, else 0.0.
        word_ids (int32 [K, (n)]): the word's index in its *sentence*, on the first piece of
          every word (owned or not) only; -1 on other pieces, `[CLS]`, `[SEP]` and padding.
          (Pretraining's `word_ids` number the words of a sequence on every piece.)
        segment_ids (int32 [K, (n)]): zeros; padding_mask (int32 [K, (n)]): 1 on real tokens.
        sentence (int32 [K]): the row of `pieces` the window comes from.
    """
    content, sentence = _window_contents(pieces, label_ids, max_sequence_length, window_stride)
    out = build_sequences(content, cls_token_id=cls_token_id, sep_token_id=sep_token_id,
                          pad_token_id=pad_token_id, fill_values={"word_ids": -1},
                          padding=None if pad_token_id is None else "longest")
    out["sentence"] = sentence
    return out


def _window_contents(pieces, label_ids, max_sequence_length, window_stride=None):
    """The pieces of every window (`sentence_windows` without `[CLS]`/`[SEP]`).

    All sentences of the batch are handled at once with index arithmetic on the flat arrays
    of words and pieces (word offsets are global, clamped at sentence ends): one call per few
    hundred sentences, and no ragged tensor per sentence, which tf.data handles slowly.

    Returns:
      `(content, sentence)`: dict of [K, (n)] `token_ids`, `labels`, `label_weights`,
      `word_ids` (as in `sentence_windows`), and [K] int32 sentence of each window.
    """
    budget = max_sequence_length - 2
    stride = _window_stride(max_sequence_length, window_stride)
    label_ids = tf.cast(label_ids.flat_values, tf.int32)  # [Wt] all words of the batch
    first_word = tf.cast(pieces.row_splits[:-1], tf.int32)  # [S] sentence s = words
    last_word = tf.cast(pieces.row_splits[1:], tf.int32)  # [S]   first_word[s]:last_word[s]
    flat = tf.cast(pieces.flat_values, tf.int32)  # [P_all]
    raw_counts = tf.cast(pieces.values.row_lengths(), tf.int32)  # [Wt]
    num_words = tf.shape(raw_counts)[0]
    word = tf.range(num_words)  # [Wt]
    word_sentence = tf.cast(pieces.value_rowids(), tf.int32)  # [Wt]
    sentence_end = tf.gather(last_word, word_sentence)  # [Wt]

    # A word never exceeds a window: keep its first `budget` pieces.  [P_all] -> [T]
    in_word = tf.range(tf.size(flat)) - tf.repeat(tf.cumsum(raw_counts, exclusive=True),
                                                  raw_counts)
    keep = in_word < budget
    flat, in_word = tf.boolean_mask(flat, keep), tf.boolean_mask(in_word, keep)  # [T]
    counts = tf.minimum(raw_counts, budget)  # [Wt]
    ends = tf.cumsum(counts)  # [Wt] piece offset just after each word
    starts = ends - counts  # [Wt] piece offset of each word's first piece
    piece_word = tf.repeat(word, counts)  # [T]

    # Where a window that starts at word i ends (exclusive), and where the next one starts.
    # Both are non-decreasing in i within a sentence (`ends` is strictly increasing since
    # every word has a piece) and clamped to the sentence.
    window_end = tf.minimum(
        tf.searchsorted(ends, starts + budget, side="right", out_type=tf.int32),
        sentence_end)  # [Wt]
    jump = tf.searchsorted(starts, starts + stride, side="right", out_type=tf.int32) - 1
    next_start = tf.minimum(tf.maximum(jump, word + 1), window_end)  # [Wt]
    # A trailing entry: an empty last sentence starts (and ends) at word Wt.
    window_end_ext = tf.concat([window_end, [num_words]], 0)  # [Wt + 1]
    next_start_ext = tf.concat([next_start, [num_words]], 0)  # [Wt + 1]

    # Follow next_start from each sentence's first word, all sentences in step.
    def more(i, cur, active, found, alive):
        return tf.reduce_any(active)

    def step(i, cur, active, found, alive):
        found, alive = found.write(i, cur), alive.write(i, active)
        active = tf.logical_and(active, tf.gather(window_end_ext, cur) < last_word)
        cur = tf.where(active, tf.gather(next_start_ext, cur), cur)
        return i + 1, cur, active, found, alive

    num_sentences = tf.shape(first_word)[0]
    loop = (0, first_word, tf.ones([num_sentences], tf.bool),  # every sentence has a window
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
            tf.TensorArray(tf.bool, size=0, dynamic_size=True, element_shape=[None]))
    _, _, _, found, alive = tf.while_loop(more, step, loop)
    alive = tf.transpose(alive.stack())  # [S, I] sentence-major order
    win_start = tf.boolean_mask(tf.transpose(found.stack()), alive)  # [K]
    win_sentence = tf.boolean_mask(
        tf.broadcast_to(tf.range(num_sentences)[:, None], tf.shape(alive)), alive)  # [K]
    win_end = tf.minimum(tf.gather(window_end_ext, win_start),
                         tf.gather(last_word, win_sentence))  # [K] (empty sentence: start)
    num_windows = tf.shape(win_start)[0]
    offsets = tf.concat([[0], ends], 0)  # [Wt + 1] piece offset of word boundary i
    first_piece = tf.gather(offsets, win_start)  # [K]
    end_piece = tf.gather(offsets, win_end)  # [K]

    # Ownership, over the (window, word) pairs: the window where each word is farthest from
    # an edge that cuts its sentence; the earliest such window on ties.  [Q]
    words_per_window = win_end - win_start  # [K]
    pair_window = tf.repeat(tf.range(num_windows), words_per_window)  # [Q]
    pair_word = (tf.range(tf.reduce_sum(words_per_window))
                 - tf.repeat(tf.cumsum(words_per_window, exclusive=True), words_per_window)
                 + tf.repeat(win_start, words_per_window))  # [Q]
    never = budget + 1  # more than any distance inside a window
    cuts_left = tf.gather(win_start > tf.gather(first_word, win_sentence), pair_window)
    cuts_right = tf.gather(win_end < tf.gather(last_word, win_sentence), pair_window)
    left = tf.where(cuts_left, tf.gather(starts, pair_word)
                    - tf.gather(first_piece, pair_window), never)
    right = tf.where(cuts_right, tf.gather(end_piece, pair_window)
                     - tf.gather(ends, pair_word), never)
    score = tf.minimum(left, right)  # [Q]
    best = tf.math.unsorted_segment_max(score, pair_word, num_words)  # [Wt]
    is_best = tf.equal(score, tf.gather(best, pair_word))
    owner = tf.math.unsorted_segment_min(tf.where(is_best, pair_window, num_windows),
                                         pair_word, num_words)  # [Wt] (every word is covered)

    # A window's words are contiguous, so its pieces are the slice flat[first_piece :
    # end_piece]; every value of a piece is gathered through its index in `flat`.
    piece = tf.ragged.range(first_piece, end_piece)  # [K, (n)]
    index = piece.flat_values  # [N] all pieces of all windows
    window = tf.cast(piece.value_rowids(), tf.int32)  # [N]
    word_of = tf.gather(piece_word, index)  # [N]
    first = tf.gather(tf.equal(in_word, 0), index)  # [N] the word's first piece
    owned = tf.equal(tf.gather(owner, word_of), window)
    word_in_sentence = word_of - tf.gather(first_word, tf.gather(win_sentence, window))
    content = {
        "token_ids": tf.gather(flat, index),
        "labels": tf.where(first, tf.gather(label_ids, word_of), 0),
        "label_weights": tf.cast(tf.logical_and(first, owned), tf.float32),
        "word_ids": tf.where(first, word_in_sentence, -1),
    }
    return {k: piece.with_flat_values(v) for k, v in content.items()}, win_sentence


# ----------------------------------------------------------------------------------------------
# NER
# ----------------------------------------------------------------------------------------------
def _window_stride(max_sequence_length: int, window_stride: int | None) -> int:
    budget = max_sequence_length - 2
    if budget < 1:
        raise ValueError(f"max_sequence_length must be >= 3, got {max_sequence_length}")
    stride = max(budget // 2, 1) if window_stride is None else int(window_stride)
    if not 1 <= stride <= budget:
        raise ValueError(f"window_stride must be in [1, {budget}] (max_sequence_length - 2), "
                         f"got {window_stride}")
    return stride


def _ragged_rows(rows, dtype) -> tf.RaggedTensor:
    """Python list of lists -> [N, (n)] ragged (faster than `tf.ragged.constant`)."""
    rows = [list(r) for r in rows]
    flat = [v for r in rows for v in r]
    values = tf.constant(flat, dtype) if flat else tf.zeros([0], dtype)
    return tf.RaggedTensor.from_row_lengths(
        values, tf.constant([len(r) for r in rows], tf.int64, shape=[len(rows)]))


def _ner_windows_unbatched(sentences_words, label_ids, tokenizer, max_sequence_length,
                           window_stride, shuffle, seed):
    """Windows, one element each: dict of [n] tensors (the encoder's inputs, `labels`,
    `label_weights`, `word_ids`) and a scalar `example_index`."""
    sentences_words, label_ids = list(sentences_words), list(label_ids)
    if len(sentences_words) != len(label_ids):
        raise ValueError(f"{len(sentences_words)} sentences but {len(label_ids)} label lists")
    for i, (words, labels) in enumerate(zip(sentences_words, label_ids)):
        if len(words) != len(labels):
            raise ValueError(f"sentence {i} has {len(words)} words but {len(labels)} labels")
    _window_stride(max_sequence_length, window_stride)  # validate before building the graph
    # The sentences live in two ragged tensors that each batch gathers rows from: slicing a
    # dataset of ragged rows costs ~0.1 ms a row, more than tokenizing it.
    words = _ragged_rows(sentences_words, tf.string)  # [N, (W)]
    labels = _ragged_rows(label_ids, tf.int32)  # [N, (W)]
    ds = tf.data.Dataset.range(len(sentences_words))
    if shuffle:
        ds = ds.shuffle(max(len(sentences_words), 1), seed=seed, reshuffle_each_iteration=True)

    def windows(index):  # [b] sentences -> [K, M] windows
        index = tf.cast(index, tf.int32)
        pieces = word_pieces(tf.gather(words, index), tokenizer)  # [b, (W), (P)]
        out = sentence_windows(pieces, tf.gather(labels, index), max_sequence_length,
                               tokenizer.cls_token_id, tokenizer.sep_token_id, window_stride,
                               pad_token_id=tokenizer.pad_token_id)
        out["example_index"] = tf.gather(index, out.pop("sentence"))
        return out

    def trim(window):  # [M] -> [n + 2]
        length = tf.reduce_sum(window["padding_mask"])
        return {k: v if k == "example_index" else v[:length] for k, v in window.items()}

    ds = ds.batch(_TOKENIZE_BATCH).map(windows, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.unbatch().map(trim, num_parallel_calls=tf.data.AUTOTUNE)


def _ner_example(window):
    x = {name: window[name] for name in INPUT_NAMES}
    info = {"example_index": window["example_index"], "word_ids": window["word_ids"]}
    return x, window["labels"], window["label_weights"], info


def ner_windows(sentences_words: Sequence[Sequence[str]], label_ids: Sequence[Sequence[int]],
                tokenizer: WordPieceTokenizer, max_sequence_length: int, batch_size: int,
                window_stride: int | None = None) -> tf.data.Dataset:
    """The NER windows in sentence order, with what `merge_windows` needs to undo windowing.

    Same batches as `ner_dataset(..., shuffle=False)`, plus a fourth element:

    Returns:
      A dataset of `(x, y, sample_weight, windows)`:
        x, y, sample_weight: as in `ner_dataset`.
        windows: dict of `example_index` [B] int32 (the sentence each window comes from) and
          `word_ids` [B, L] int32 (the word's index in its sentence on every first piece, -1
          elsewhere and on padding).

    Example:
      >>> batches = list(ner_windows(words, labels, tokenizer, 128, 32))
      >>> logits = [model.predict_on_batch(x) for x, _, _, _ in batches]
      >>> per_word = merge_windows(logits, [w for *_, w in batches],
      ...                          [sw for _, _, sw, _ in batches], [len(s) for s in words])
    """
    ds = _ner_windows_unbatched(sentences_words, label_ids, tokenizer, max_sequence_length,
                                window_stride, shuffle=False, seed=0)
    ds = ds.map(_ner_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _pad_batch(ds, batch_size, tokenizer.pad_token_id,
                    extra={"example_index": 0, "word_ids": -1})
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def ner_dataset(sentences_words: Sequence[Sequence[str]], label_ids: Sequence[Sequence[int]],
                tokenizer: WordPieceTokenizer, max_sequence_length: int, batch_size: int,
                shuffle: bool = False, seed: int = 0, window_stride: int | None = None,
                mask_rate: float = 0.0, length_buckets: Sequence[int] | None = None,
                static_shapes: bool = False) -> tf.data.Dataset:
    """Token classification batches: the label of each word sits on its first word piece.

    With a hand-written vocabulary `[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 u=5 .=6 s=7
    visit=8 ##ed=9 paris=10` and labels `O=0 B-LOC=1`:

        words          Visited   U.S.              \\x00     Paris
        word labels    0         1                 0        1
        pieces         visit ##ed  u  .  s  .      [UNK]    paris
        token_ids   2  8     9     5  6  7  6      1        10      3
        y           0  0     0     1  0  0  0      0        1       0
        weight      0  1     0     1  0  0  0      1        1       0
                  [CLS]                                            [SEP]

    ("U.S." is one CoNLL word but four BERT pieces: labelled once, on "u". The word made only
    of a control character has no piece of its own and becomes `[UNK]`.) A sentence longer
    than `max_sequence_length - 2` pieces becomes several overlapping windows that label each
    word exactly once (`sentence_windows`); `merge_windows` maps predictions back to words.

    Args:
      sentences_words: sentences, each a list of words (strings).
      label_ids: for each sentence, one int label id per word.
      tokenizer: the `WordPieceTokenizer`.
      max_sequence_length: the longest window, `[CLS]` and `[SEP]` included.
      batch_size: windows per batch (the last batch may be smaller).
      shuffle: shuffle sentences (seeded, a new order every epoch) and, with `length_buckets`,
        batch windows of similar length together. Windows of one long sentence stay adjacent.
      static_shapes: pad every batch to `max_sequence_length` and drop a smaller last batch,
        so every batch has one shape (a TPU compiles one program per shape).
      seed: seed of the shuffle and of the masking augmentation.
      window_stride: pieces between the starts of consecutive windows; default half the
        window budget.
      mask_rate: fraction of real pieces replaced with `[MASK]` (see
        `masking.mask_augment`); 0 = off.
        Each batch gets its own seed, and the seeds change every epoch.
      length_buckets: upper bounds of length buckets (e.g. `(16, 32, 64)`, then
        `max_sequence_length`): each batch holds one bucket's windows, `[batch_size, bound]`
        (static shapes: see `_pad_batch`). None: no bucketing.

    Returns:
      A dataset of `(x, y, sample_weight)`:
        x: dict of `token_ids` [B, L] int32 (`[CLS] pieces [SEP] [PAD]...`), `segment_ids`
          [B, L] int32 (zeros), `padding_mask` [B, L] int32 (1 = real token); L is the
          longest window in the batch;
        y: [B, L] int32 label ids (0 where the weight is 0);
        sample_weight: [B, L] float32, 1.0 on the first piece of each word in its owning
          window, else 0.0.
    """
    ds = _ner_windows_unbatched(sentences_words, label_ids, tokenizer, max_sequence_length,
                                window_stride, shuffle, seed)
    ds = ds.map(lambda w: _ner_example(w)[:3], num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = _pad_batch(ds, batch_size, tokenizer.pad_token_id, length_buckets=length_buckets,
                    pad_to=max_sequence_length if static_shapes else None,
                    max_sequence_length=max_sequence_length)
    ds = mask_augment_dataset(ds, mask_rate, seed, mask_token_id=tokenizer.mask_token_id,
                              special_ids=tokenizer.special_ids)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def merge_windows(predictions, windows, sample_weight, num_words: Sequence[int]
                  ) -> list[np.ndarray]:
    """Per-window, per-piece predictions -> per-word predictions of every sentence.

    Each word is taken from the one window that owns it (weight 1 on its first piece), so the
    result is exact: it raises if a word is missing or found twice.

    Args:
      predictions: [N, L, ...] array (logits [N, L, C] or label ids [N, L]), or a list of
        per-batch arrays [B_i, L_i, ...] (batches padded to different lengths).
      windows: the `windows` dict of `ner_windows` (`example_index` [N], `word_ids`
        [N, L]), or a list of per-batch dicts.
      sample_weight: [N, L] weights from the same batches (or a list of them).
      num_words: the number of words of every sentence.

    Returns:
      One array per sentence, [W_s, ...], in sentence order.
    """
    if not isinstance(predictions, (list, tuple)):
        predictions, windows, sample_weight = [predictions], [windows], [sample_weight]
    num_words = np.asarray(num_words, np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_words)])  # [S + 1]
    merged, seen = None, np.zeros(offsets[-1], np.int64)
    for pred, win, weight in zip(predictions, windows, sample_weight):
        pred = np.asarray(pred)
        word_ids = np.asarray(win["word_ids"])  # [B, L]
        example = np.asarray(win["example_index"])  # [B]
        take = (np.asarray(weight) > 0) & (word_ids >= 0)  # [B, L]
        rows, cols = np.nonzero(take)
        target = offsets[example[rows]] + word_ids[rows, cols]  # flat word position
        if merged is None:
            merged = np.zeros((offsets[-1],) + pred.shape[2:], pred.dtype)
        merged[target] = pred[rows, cols]
        np.add.at(seen, target, 1)
    if merged is None:
        merged = np.zeros((offsets[-1],), np.float32)
    if not np.all(seen == 1):
        bad = np.nonzero(seen != 1)[0][:5]
        sentence = np.searchsorted(offsets, bad, side="right") - 1
        found = [(int(s), int(b - offsets[s]), int(seen[b])) for s, b in zip(sentence, bad)]
        raise ValueError(f"words not covered exactly once: (sentence, word, times) {found}")
    return np.split(merged, offsets[1:-1])


# ----------------------------------------------------------------------------------------------
# Sequence classification
# ----------------------------------------------------------------------------------------------
def classification_dataset(texts: Sequence[str], label_ids: Sequence[int],
                           tokenizer: WordPieceTokenizer, max_sequence_length: int,
                           batch_size: int, shuffle: bool = False, seed: int = 0,
                           truncation: str = "head", mask_rate: float = 0.0,
                           length_buckets: Sequence[int] | None = None,
                           text_pairs: Sequence[str] | None = None,
                           static_shapes: bool = False) -> tf.data.Dataset:
    """Sequence classification batches (e.g. sentiment, NLI): one label per text or pair.

        text            "The cat sat on the mat."     label 1
        token_ids       [CLS] the cat sat on the mat . [SEP]

        text, text_pair "A cat sat.", "It sat."       label 0
        token_ids       [CLS] a cat sat . [SEP] it sat . [SEP]
        segment_ids       0   0  0   0  0   0   1   1  1   1

    Args:
      texts: raw strings (tokenized in the graph with `tokenizer.tokenize_words`).
      label_ids: one int class id per text.
      tokenizer: the `WordPieceTokenizer`.
      max_sequence_length: L, `[CLS]` and `[SEP]` included; longer texts are truncated to
        `max_sequence_length - 2` pieces (a pair to `L - 3`, longest first as BERT does:
        `packing.longest_first`).
      batch_size: texts per batch (the last batch may be smaller).
      shuffle: shuffle texts (seeded, a new order every epoch).
      seed: seed of the shuffle and of the masking augmentation.
      truncation: "head" (first pieces) or "head_tail" (first quarter and last three
        quarters of the budget, see `packing.truncate_pieces`).
      mask_rate: fraction of real pieces replaced with `[MASK]`; 0 = off.
      length_buckets: upper bounds of length buckets, as in `ner_dataset`; None: none.
      text_pairs: the second text of each example (sentence pairs), or None.
      static_shapes: pad every batch to `max_sequence_length` and drop a smaller last batch
        (one shape for every batch, as a TPU needs).

    Returns:
      A dataset of `(x, y, sample_weight)`:
        x: dict of `token_ids`, `segment_ids` (0, and 1 on the second text and its `[SEP]`),
          `padding_mask` (1 = real token),
          each [B, L] int32, L the longest sequence in the batch;
        y: [B] int32 class ids;
        sample_weight: [B] float32 ones (kept so every fine-tuning dataset has one shape).
    """
    texts, label_ids = list(texts), list(label_ids)
    if len(texts) != len(label_ids):
        raise ValueError(f"{len(texts)} texts but {len(label_ids)} labels")
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text_pairs")
    if max_sequence_length < 3:
        raise ValueError(f"max_sequence_length must be >= 3, got {max_sequence_length}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    # A single text is a pair whose second text is absent: one element structure for both.
    segments = (texts,) if text_pairs is None else (texts, list(text_pairs))
    ds = tf.data.Dataset.from_tensor_slices(
        (tuple(tf.constant(t, tf.string, shape=[len(texts)]) for t in segments),
         tf.constant(label_ids, tf.int32, shape=[len(label_ids)])))
    if shuffle:
        ds = ds.shuffle(max(len(texts), 1), seed=seed, reshuffle_each_iteration=True)

    def tokenize(text, label):  # [b] (x2 for pairs) -> [b, (n)] sequences, unpadded
        pieces = [tokenizer.tokenize_words(t).merge_dims(1, 2) for t in text]
        x = build_sequences(*pieces, cls_token_id=tokenizer.cls_token_id,
                            sep_token_id=tokenizer.sep_token_id,
                            max_sequence_length=max_sequence_length, truncation=truncation,
                            padding=None)
        return x, label

    def example(x, label):
        # Ragged rank 0 after unbatch -> plain tensors.
        return {k: tf.identity(v) for k, v in x.items()}, label, tf.constant(1.0)

    ds = ds.batch(_TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch().map(example, num_parallel_calls=tf.data.AUTOTUNE)
    # Known size -> Keras knows the steps per epoch (progress bar, no "ran out of data").
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(texts)))
    ds = _pad_batch(ds, batch_size, tokenizer.pad_token_id, length_buckets=length_buckets,
                    pad_to=max_sequence_length if static_shapes else None,
                    max_sequence_length=max_sequence_length)
    ds = mask_augment_dataset(ds, mask_rate, seed, mask_token_id=tokenizer.mask_token_id,
                              special_ids=tokenizer.special_ids)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


# ----------------------------------------------------------------------------------------------
# Batching shared by both builders
# ----------------------------------------------------------------------------------------------
def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    return options


def bucket_bounds(length_buckets: Sequence[int] | None, max_sequence_length: int) -> list[int]:
    """The padded lengths of buckets: the bounds below `max_sequence_length`, sorted, then
    `max_sequence_length`. `bucket_bounds([64, 16, 32, 512], 128) == [16, 32, 64, 128]`."""
    return sorted({int(b) for b in length_buckets or () if 0 < int(b) < max_sequence_length}
                  | {int(max_sequence_length)})


def _pad_batch(ds: tf.data.Dataset, batch_size: int, pad_token_id: int,
               length_buckets: Sequence[int] | None = None,
               extra: dict[str, int] | None = None,
               pad_to: int | None = None, max_sequence_length: int = 0) -> tf.data.Dataset:
    """`(x, y, sample_weight[, info])` examples -> batches padded to their longest sequence
    (the last batch may be smaller); with `pad_to`, all `[batch_size, pad_to]` (a smaller last
    batch dropped: a TPU); with `length_buckets`, an example of length n goes to the bucket of
    the smallest bound >= n (`bucket_bounds`) and every batch of a bucket is `[batch_size,
    bound]`, its last batch filled with padding rows of weight 0 (nothing in the weighted loss
    and metrics): one batch shape per bucket, so XLA compiles the train step once per bucket.
    """
    spec = ds.element_spec
    pad_value = lambda spec_, value: tf.constant(value, spec_.dtype)  # noqa: E731

    x_pad = {"token_ids": pad_value(spec[0]["token_ids"], pad_token_id),
             "segment_ids": pad_value(spec[0]["segment_ids"], 0),
             "padding_mask": pad_value(spec[0]["padding_mask"], 0)}
    padding = [x_pad, pad_value(spec[1], 0), pad_value(spec[2], 0)]
    if len(spec) == 4:
        padding.append({k: pad_value(spec[3][k], extra[k]) for k in spec[3]})
    padding = tuple(padding)
    if pad_to is not None:
        shapes = tf.nest.map_structure(lambda spec_: [pad_to] * spec_.shape.rank, spec)
        return ds.padded_batch(batch_size, padded_shapes=shapes, padding_values=padding,
                               drop_remainder=True)
    if not length_buckets:
        return ds.padded_batch(batch_size, padding_values=padding)
    bounds = bucket_bounds(length_buckets, max_sequence_length)
    # TF's buckets are [b_i, b_i+1) and pad to b_i+1 - 1: shift by one to pad to each bound.
    ds = ds.bucket_by_sequence_length(
        lambda x, *rest: tf.shape(x["token_ids"])[0],
        bucket_boundaries=[b + 1 for b in bounds],
        bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
        padding_values=padding, pad_to_bucket_boundary=True)

    def fill_rows(*batch):  # a bucket's last batch -> batch_size rows; padding weighs 0
        missing = batch_size - tf.shape(batch[0]["token_ids"])[0]
        return tf.nest.map_structure(lambda t, value: tf.pad(
            t, [[0, missing]] + [[0, 0]] * (t.shape.rank - 1), constant_values=value),
            batch, padding)

    return ds.map(fill_rows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
