"""Packing word pieces into fixed-length BERT sequences, with TensorFlow ops only.

Two steps:

1. `pack_lines` turns a stream of tokenized lines into sequences of at most `budget`
   pieces (budget = `max_sequence_length - 2`, room for `[CLS]` and `[SEP]`):
   - "full_sentences": consecutive lines of one document are concatenated while they fit
     (RoBERTa's FULL-SENTENCES packing); an empty line or the end of a file ends a document;
   - "one_line": every line is its own sequence.
   A line longer than the budget is cut into budget-sized chunks, so no piece is ever lost.

2. `finalize` adds `[CLS]`/`[SEP]`, pads to `max_sequence_length` and builds the model inputs.

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


def finalize(ids: tf.RaggedTensor, word_starts: tf.RaggedTensor, max_sequence_length: int,
             cls_id: int, sep_id: int, pad_id: int) -> dict[str, tf.Tensor]:
    """[B, (n)] packed pieces -> dense BERT inputs of length `max_sequence_length`.

    Returns a dict of [B, L] tensors:
      token_ids (int32): `[CLS] pieces [SEP] [PAD]...`
      segment_ids (int32): zeros (one segment per sequence).
      padding_mask (bool): True on real tokens, `[CLS]`/`[SEP]` included.
      word_ids (int32): word index of each piece within its sequence, -1 on `[CLS]`, `[SEP]`
        and padding (what whole-word masking groups by).
    """
    batch = ids.nrows()
    cls = tf.fill([batch, 1], tf.constant(cls_id, tf.int32))
    sep = tf.fill([batch, 1], tf.constant(sep_id, tf.int32))
    false = tf.zeros([batch, 1], tf.bool)
    ids = tf.concat([cls, ids, sep], axis=1)
    content = tf.concat([false, tf.ones_like(word_starts, tf.bool), false], axis=1)
    starts = tf.concat([false, word_starts, false], axis=1)
    shape = [batch, max_sequence_length]
    token_ids = ids.to_tensor(default_value=pad_id, shape=shape)
    content = content.to_tensor(default_value=False, shape=shape)
    starts = tf.cast(starts.to_tensor(default_value=False, shape=shape), tf.int32)
    word_ids = tf.where(content, tf.cumsum(starts, axis=1) - 1, -1)
    # From the row lengths, not `token_ids != pad_id`: a vocabulary may reuse the pad id.
    padding_mask = tf.ones_like(ids, tf.bool).to_tensor(default_value=False, shape=shape)
    return {
        "token_ids": token_ids,
        "segment_ids": tf.zeros_like(token_ids),
        "padding_mask": padding_mask,
        "word_ids": word_ids,
    }
