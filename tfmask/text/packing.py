"""Word pieces -> BERT sequences, with TensorFlow ops only.

`build_sequences` is the one place that lays out `[CLS] A [SEP] (B [SEP])`: it truncates the
segments to fit, writes segment ids and pads. Pretraining (through `finalize`), the
fine-tuning datasets (NER windows, classification) and the `serve_text` signatures all call
it, so training and serving see the same layout:

    A = [a b c], B = [d e]          [CLS] a b c [SEP] d e [SEP] [PAD]
                      segment_ids     0   0 0 0   0   1 1   1     0
                      padding_mask    1   1 1 1   1   1 1   1     0

Pretraining text is first packed into sequences of at most `budget` pieces (budget =
`max_sequence_length - 2`, room for `[CLS]` and `[SEP]`):

1. `chunk_lines` cuts a line longer than the budget into budget-sized chunks, so no piece is
   ever lost;
2. `pack_lines` packs the chunks:
   - "full_sentences": consecutive lines of one document are concatenated while they fit
     (RoBERTa's FULL-SENTENCES packing); an empty line or the end of a file ends a document;
   - "one_line": every line is its own sequence;
3. `finalize` (= `build_sequences` padded to `max_sequence_length`) makes the model inputs
   and the word ids whole-word masking groups by.

    lines (pieces)      [a b] [c d e] [] [f]          budget 4, full_sentences
    packed              [a b] [c d e] [f]             (a b + c d e = 5 > 4; [] ends a doc)
    finalized           [CLS a b SEP PAD PAD] ...
"""

from __future__ import annotations

import tensorflow as tf


def chunk_lines(ids: tf.RaggedTensor, word_starts: tf.RaggedTensor, budget: int):
    """Splits each row into chunks of at most `budget` pieces.

    Args:
      ids: [lines, (pieces)] int32 ids.
      word_starts: [lines, (pieces)] bool, True on the first piece of a word.
      budget: maximum pieces per chunk.

    Returns:
      `(ids, word_starts)` as [chunks, (pieces)] ragged tensors. An empty line stays one empty
      chunk (it marks a document boundary). The first piece of every chunk is marked as a
      word start, so a word cut by a chunk boundary becomes two words, never a headless one.
    """
    n = ids.row_lengths()  # [lines]
    num_chunks = tf.maximum((n + budget - 1) // budget, 1)  # [lines]
    chunk_index = tf.ragged.range(num_chunks).flat_values  # [chunks] index within its line
    line_length = tf.repeat(n, num_chunks)  # [chunks]
    lengths = tf.clip_by_value(line_length - chunk_index * budget, 0, budget)
    out_ids = tf.RaggedTensor.from_row_lengths(ids.flat_values, lengths)
    starts = tf.RaggedTensor.from_row_lengths(word_starts.flat_values, lengths)
    first = tf.equal(tf.ragged.range(lengths), 0)
    return out_ids, tf.logical_or(starts, first)


def pack_lines(chunks: tf.data.Dataset, budget: int, packing: str = "full_sentences"):
    """Packs a stream of `(ids, word_starts)` chunks into sequences of <= `budget` pieces.

    Args:
      chunks: dataset of `(ids [n], word_starts [n])` with `n <= budget`; `n == 0` marks the
        end of a document. It must end with such a marker, or the last sequence is dropped.
      budget: maximum pieces per sequence.
      packing: "full_sentences" or "one_line".

    Returns:
      dataset of `(ids [m], word_starts [m])`, `0 < m <= budget`.
    """
    if packing == "one_line":
        return chunks.filter(lambda ids, starts: tf.size(ids) > 0)
    if packing != "full_sentences":
        raise ValueError(f"packing must be 'full_sentences' or 'one_line', got {packing!r}")

    empty = (tf.zeros([0], tf.int32), tf.zeros([0], tf.bool))

    def step(state, chunk):
        buf_ids, buf_starts = state
        ids, starts = chunk
        n, held = tf.size(ids), tf.size(buf_ids)
        # Emit what is held when the document ends or the new chunk would not fit.
        flush = tf.logical_and(held > 0, tf.logical_or(n == 0, held + n > budget))
        new_ids = tf.cond(flush, lambda: ids, lambda: tf.concat([buf_ids, ids], 0))
        new_starts = tf.cond(flush, lambda: starts, lambda: tf.concat([buf_starts, starts], 0))
        out = (flush, tf.cond(flush, lambda: buf_ids, lambda: empty[0]),
               tf.cond(flush, lambda: buf_starts, lambda: empty[1]))
        return (new_ids, new_starts), out

    packed = chunks.scan(empty, step)
    return packed.filter(lambda flush, ids, starts: flush).map(
        lambda flush, ids, starts: (ids, starts))


#: How a segment that does not fit is cut ("head": keep its first pieces; "head_tail": its
#: first quarter and last three quarters, see `truncate_pieces`).
TRUNCATIONS = ("head", "head_tail")
#: "longest": pad to the longest sequence of the batch; "max_length": to
#: `max_sequence_length`; None: no padding, ragged outputs.
PADDINGS = ("longest", "max_length", None)


def _source_position(p, n, k, truncation: str):
    """Position `p` among the `k` pieces a row keeps -> its position among the row's `n`.

    "head" keeps the first k; "head_tail" the first `ceil(k / 4)` and the last
    `k - ceil(k / 4)` when the row is cut (`n > k`), every piece otherwise.
    """
    if truncation == "head":
        return p
    head = (k + 3) // 4
    return tf.where(p < head, p, p + (n - k))


def truncate_pieces(ids: tf.RaggedTensor, budget, truncation: str = "head") -> tf.RaggedTensor:
    """[B, (n)] pieces -> [B, (min(n, budget))] pieces.

    "head" keeps the first `budget` pieces. "head_tail" keeps the first `ceil(budget / 4)`
    and the last `budget - ceil(budget / 4)` pieces of a row that is too long: 128 + 382 for
    `max_sequence_length` 512 (budget 510), the split Sun et al. (2019), "How to Fine-Tune
    BERT for Text Classification?", found best on IMDb; 32 + 94 for 128. Rows that fit are
    unchanged.

    Args:
      ids: [B, (n)] ragged pieces.
      budget: pieces to keep per row: an int, or a [B] int tensor (one budget per row).
      truncation: one of `TRUNCATIONS`.
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    n = tf.cast(ids.row_lengths(), tf.int32)  # [B]
    k = tf.minimum(n, tf.cast(budget, tf.int32))  # [B]
    kept = tf.ragged.range(k)  # [B, (k)]
    row = kept.value_rowids()
    position = _source_position(kept.flat_values, tf.gather(n, row), tf.gather(k, row),
                                truncation)
    start = tf.gather(tf.cast(ids.row_splits, tf.int32), row)
    return kept.with_flat_values(tf.gather(ids.flat_values, start + position))


def longest_first(first_lengths: tf.Tensor, second_lengths: tf.Tensor, budget: int):
    """Pieces each segment of a pair keeps so that together they fit in `budget`.

    BERT's pair rule: while the pair is too long, drop one piece from the longer segment (the
    second on ties). In closed form, a segment no longer than half the budget is kept whole
    and the other gets the rest; two long segments get `ceil(budget / 2)` and
    `floor(budget / 2)` pieces.

        lengths (7, 2), budget 6  ->  (4, 2)
        lengths (5, 5), budget 7  ->  (4, 3)

    Args:
      first_lengths, second_lengths: [B] int32 pieces of segments A and B.
      budget: pieces for both (`max_sequence_length - 3`).

    Returns:
      `(keep_first, keep_second)`, [B] int32 each.
    """
    half = (budget + 1) // 2
    keep_first = tf.minimum(first_lengths, tf.maximum(budget - second_lengths, half))
    keep_second = tf.minimum(second_lengths, budget - keep_first)
    return keep_first, keep_second


def _as_segment(segment) -> dict[str, tf.RaggedTensor]:
    if isinstance(segment, dict):
        if "token_ids" not in segment:
            raise ValueError(f"a segment dict needs token_ids, got keys {sorted(segment)}")
        if "word_starts" in segment and "word_ids" in segment:
            raise ValueError("give word_starts (to number the words) or word_ids, not both")
        return dict(segment)
    return {"token_ids": segment}


def build_sequences(first, second=None, *, cls_token_id: int, sep_token_id: int,
                    pad_token_id: int | None = None, max_sequence_length: int | None = None,
                    truncation: str = "head", padding: str | None = "longest",
                    fill_values: dict | None = None) -> dict[str, tf.Tensor]:
    """Segments of word pieces -> the encoder's inputs `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.

    Worked example (`max_sequence_length` 8: 5 pieces for A and B, longest first):

        A = [a b c d], B = [e f g]      A keeps 3 pieces, B keeps 2 (B cut on the tie)
        token_ids      [CLS] a b c [SEP] e f [SEP]
        segment_ids      0   0 0 0   0   1 1   1
        padding_mask     1   1 1 1   1   1 1   1

    A segment is a [B, (n)] ragged tensor of int token ids, or a dict holding it under
    `token_ids` plus per-piece [B, (n)] values that travel with the pieces (truncated with
    them and placed at the same positions):
      - `word_starts` (bool, True on the first piece of each word) becomes `word_ids` [B, L]
        int32: the index of each piece's word in the sequence (the words of B continue after
        those of A), -1 on `[CLS]`, `[SEP]` and padding -- what whole-word masking groups by.
        A segment's first piece, and the first piece after a "head_tail" cut, always start a
        word (a piece with word id -1 would never be masked, and a word cut in two is two);
      - any other key K comes back as K [B, L] of its dtype, with `fill_values[K]` (default 0
        / False) on `[CLS]`, `[SEP]` and padding.
    A pair's two segments carry the same keys.

    Args:
      first: segment A.
      second: segment B, or None for a single segment.
      cls_token_id, sep_token_id, pad_token_id: ids of `[CLS]`, `[SEP]`, `[PAD]`
        (`pad_token_id` may be None when `padding` is None).
      max_sequence_length: L, the longest sequence, specials included: longer inputs are
        truncated to `L - 2` pieces (`L - 3` for a pair, shared as `longest_first` says).
        None: nothing is truncated.
      truncation: which pieces a cut segment keeps (`TRUNCATIONS`): "head" its first ones,
        "head_tail" a head and a tail (as `truncate_pieces`).
      padding: one of `PADDINGS`: "longest" pads to the longest sequence of the batch (at
        least the specials' width, so an empty batch is still [0, 2]), "max_length" to
        `max_sequence_length`, None returns [B, (n)] ragged tensors.
      fill_values: fill value of each extra key (see above).

    Returns:
      dict of [B, L] tensors (ragged [B, (n)] when `padding` is None):
        token_ids (int32): `[CLS] A [SEP] (B [SEP]) [PAD]...`.
        segment_ids (int32): 0 on `[CLS]`, A and its `[SEP]`; 1 on B and its `[SEP]`; 0 on
          padding.
        padding_mask (int32): 1 on real tokens, specials included, 0 on padding. From the
          row lengths, not `token_ids != pad_token_id`: a vocabulary may reuse the pad id.
        word_ids (int32): with `word_starts`, as described above.
        and every other key of the segments.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    if padding == "max_length" and max_sequence_length is None:
        raise ValueError('padding="max_length" needs max_sequence_length')
    if padding is not None and pad_token_id is None:
        raise ValueError("padding needs pad_token_id")
    segments = [_as_segment(first)] + ([] if second is None else [_as_segment(second)])
    if len({frozenset(s) for s in segments}) > 1:
        raise ValueError("both segments must carry the same keys, got "
                         f"{[sorted(s) for s in segments]}")
    num_specials = len(segments) + 1

    # How many pieces each segment keeps.  [B] each
    n = [tf.cast(s["token_ids"].row_lengths(), tf.int32) for s in segments]
    k = n
    if max_sequence_length is not None:
        budget = max_sequence_length - num_specials
        if budget < 0:
            raise ValueError(f"max_sequence_length {max_sequence_length} leaves no room for "
                             f"{num_specials} special tokens")
        k = [tf.minimum(n[0], budget)] if len(segments) == 1 else list(longest_first(*n, budget))
    total = num_specials + tf.add_n(k)  # [B] sequence lengths
    if padding == "max_length":
        width = max_sequence_length
    else:
        width = tf.reduce_max(tf.concat([total, [num_specials]], axis=0))

    # The layout by index arithmetic, one gather per output (cheaper than concatenating ragged
    # tensors): `source` is 1 + the index of the piece a position holds in the segments' flat
    # values laid end to end, 0 on specials and padding.  [B, W]
    j = tf.range(width)[None, :]  # [1, W]
    zeros = tf.zeros_like(total)[:, None] + tf.zeros_like(j)  # [B, W]
    source, segment_ids, is_sep, new_word = zeros, zeros, zeros > 0, zeros > 0
    start = tf.ones_like(total)[:, None]  # [B, 1] position of the segment's first piece
    offset = 1
    for index, (segment, n_i, k_i) in enumerate(zip(segments, n, k)):
        n_i, k_i = n_i[:, None], k_i[:, None]  # [B, 1]
        p = j - start  # [B, W] position among the pieces the segment keeps
        inside = (p >= 0) & (p < k_i)
        row_start = tf.cast(segment["token_ids"].row_splits[:-1], tf.int32)[:, None]
        piece = offset + row_start + _source_position(p, n_i, k_i, truncation)
        source = tf.where(inside, piece, source)
        is_sep |= tf.equal(p, k_i)
        segment_ids = tf.where((p >= 0) & (p <= k_i), index, segment_ids)
        new_word |= inside & tf.equal(p, 0)
        if truncation == "head_tail":
            new_word |= inside & (n_i > k_i) & tf.equal(p, (k_i + 3) // 4)
        offset += tf.size(segment["token_ids"].flat_values, out_type=tf.int32)
        start += k_i + 1

    def gather(key, fill):  # the key's value at every position, `fill` off the pieces
        flat = [segment[key].flat_values for segment in segments]
        fill = tf.constant(fill, flat[0].dtype)
        return tf.gather(tf.concat([fill[None]] + flat, axis=0), source)

    fill_values = fill_values or {}
    ids = tf.cast(gather("token_ids", pad_token_id or 0), tf.int32)
    out = {
        "token_ids": tf.where(tf.equal(j, 0), cls_token_id,
                              tf.where(is_sep, sep_token_id, ids)),
        "segment_ids": segment_ids,
        "padding_mask": tf.cast(j < total[:, None], tf.int32),
    }
    for key in segments[0]:
        if key == "word_starts":
            starts = tf.cast(gather(key, False) | new_word, tf.int32)
            out["word_ids"] = tf.where(source > 0, tf.cumsum(starts, axis=1) - 1, -1)
        elif key != "token_ids":
            out[key] = gather(key, fill_values.get(key, 0))
    if padding is None:
        return {key: tf.RaggedTensor.from_tensor(v, lengths=total) for key, v in out.items()}
    return out


def finalize(ids: tf.RaggedTensor, word_starts: tf.RaggedTensor, max_sequence_length: int,
             cls_token_id: int, sep_token_id: int, pad_token_id: int) -> dict[str, tf.Tensor]:
    """[B, (n)] packed pieces (n <= `max_sequence_length - 2`) -> pretraining inputs.

    `build_sequences` padded to `max_sequence_length` (every batch has one shape).

    Returns a dict of [B, L] int32 tensors:
      token_ids: `[CLS] pieces [SEP] [PAD]...`
      segment_ids: zeros (one segment per sequence).
      padding_mask: 1 on real tokens, `[CLS]`/`[SEP]` included, 0 on padding.
      word_ids: word index of each piece within its sequence, -1 on `[CLS]`, `[SEP]` and
        padding (what whole-word masking groups by).
    """
    return build_sequences({"token_ids": ids, "word_starts": word_starts},
                           cls_token_id=cls_token_id, sep_token_id=sep_token_id,
                           pad_token_id=pad_token_id, max_sequence_length=max_sequence_length,
                           padding="max_length")
