"""Word n-gram fingerprints on packed batches, and the lookup tables that turn them into the
units entity, keyword and PMI masking select.

A *word* is what the basic tokenizer splits (`tokenization.basic_split`): the pieces that
share a `word_ids` value in a packed sequence. Every word gets two 31-bit polynomial hashes of
its piece ids (modulo two primes), and every run of `n` consecutive words a fingerprint: the
same polynomial over its words' hashes, both halves packed into one int64 key:

    pieces      [CLS] new  york  ##er  city  [SEP]
    word_ids     -1   0    1     1     2     -1
    word hash         h0   h1          h2            h = sum (id + 1) R^(m-1-k) mod P
    n-gram key  n=1   F(h0)  F(h1)  F(h2)             F(h..) = sum (h + 1) S^(n-1-i) mod P
                n=2   F(h0 h1)  F(h1 h2)              key = F_P1 * 2^31 + F_P2
                n=3   F(h0 h1 h2)

Lists of n-grams read from files (entities, PMI n-grams, words with their document
frequencies) get their keys from the very same graph function, run on the list tokenized by
the run's tokenizer (`text_keys`), so a text and its occurrence in a batch always agree (two
different n-grams share a key with probability about 2^-62 per pair).

`match_units` then finds the listed n-grams in a batch, longest first and without overlap
(greedy from left to right), and gives every matched n-gram one group id for all its pieces;
the other words keep their own word as a group. Everything is a function of tensors: no Python
loop over tokens, usable inside `tf.data.map`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

#: Two primes below 2^31: products of two residues fit in an int64.
_MODULI = (2147483647, 2147483629)
# Large bases, one pair for the pieces of a word and another for the words of an n-gram:
# with small bases, or one base for both levels, a one-word key would equal a two-word key
# exactly (word [a, b] vs words [a - 1], [b]), whatever the moduli.
_PIECE_BASES = (1_406_931_211, 1_839_280_477)
_WORD_BASES = (1_190_494_759, 2_004_326_411)
_HALF = 2**31
#: Power tables when the sequence length is not known when the graph is built.
_MAX_LENGTH = 4096


def _powers(base: int, modulus: int, length: int) -> tf.Tensor:
    """[length] int64: base^e mod modulus for e = 0 .. length - 1."""
    out, value = [], 1
    for _ in range(length):
        out.append(value)
        value = value * base % modulus
    return tf.constant(np.array(out, np.int64))


def word_hashes(token_ids: tf.Tensor, word_ids: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
    """The two hashes of every word of every sequence.

    Args:
      token_ids: [B, L] int32 piece ids.
      word_ids: [B, L] int32 word index of each piece, -1 on `[CLS]`, `[SEP]` and padding;
        words are numbered 0, 1, ... in order (as `packing.finalize` makes them).

    Returns:
      `([h_P1, h_P2], num_words)`: two [B, L] int64 tensors whose slot w holds the hash of
      word w (0 beyond the sequence's words), and [B] int32 the number of words.
    """
    token_ids = tf.cast(token_ids, tf.int64)
    word_ids = tf.convert_to_tensor(word_ids, tf.int32)
    batch, length = tf.shape(word_ids)[0], tf.shape(word_ids)[1]
    real = word_ids >= 0
    flat_word = tf.range(batch)[:, None] * length + tf.maximum(word_ids, 0)  # [B, L]
    flat_word = tf.where(real, flat_word, batch * length)  # a bin of its own for the rest
    position = tf.broadcast_to(tf.range(length)[None, :], tf.shape(word_ids))
    start = tf.math.unsorted_segment_min(position, flat_word, batch * length + 1)
    size = tf.math.unsorted_segment_sum(tf.cast(real, tf.int32), flat_word, batch * length + 1)
    # Per piece: k = index within its word, m = its word's length; exponent m - 1 - k.
    exponent = tf.gather(start + size, flat_word) - 1 - position  # [B, L]
    exponent = tf.where(real, exponent, 0)
    hashes = []
    static_length = word_ids.shape[1]
    for base, modulus in zip(_PIECE_BASES, _MODULI):
        # Exponents are below the word's length, at most the sequence length.
        powers = _powers(base, modulus, static_length or _MAX_LENGTH)
        term = (token_ids + 1) * tf.gather(powers, exponent) % modulus
        term = tf.where(real, term, 0)
        total = tf.math.unsorted_segment_sum(term, flat_word, batch * length + 1)
        hashes.append(tf.reshape(total[:-1] % modulus, [batch, length]))
    num_words = tf.reduce_max(word_ids, axis=1) + 1
    return hashes, num_words


def ngram_keys(token_ids: tf.Tensor, word_ids: tf.Tensor, max_words: int
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """Fingerprints of every n-gram of whole words, n = 1 .. `max_words`.

    Returns:
      `(keys, valid)`: [B, L, max_words] int64 keys, slot `[b, w, n - 1]` for the n words
      starting at word w, and [B, L, max_words] bool, True where those n words exist.
    """
    hashes, num_words = word_hashes(token_ids, word_ids)
    length = tf.shape(word_ids)[1]
    index = tf.range(length)[None, :]  # [1, L]
    keys, valid = [], []
    rolling = [tf.zeros_like(h) for h in hashes]
    for n in range(1, max_words + 1):
        # Word w + n - 1 moved to slot w; slots past the end read 0 and are not valid.
        rolling = [(r * base + tf.pad(h[:, n - 1:], [[0, 0], [0, n - 1]]) + 1) % modulus
                   for r, h, base, modulus in zip(rolling, hashes, _WORD_BASES, _MODULI)]
        keys.append(rolling[0] * _HALF + rolling[1])
        valid.append(index + n <= num_words[:, None])
    return tf.stack(keys, axis=-1), tf.stack(valid, axis=-1)


def text_keys(tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The key of each text taken as one n-gram of all its words, as `ngram_keys` computes it
    on a batch that holds the text. Returns `(keys [N] int64, num_words [N] int32)`; a text
    with no word gets key 0 and 0 words."""
    if not texts:
        return np.zeros([0], np.int64), np.zeros([0], np.int32)
    keys, counts = [], []
    for start in range(0, len(texts), 4096):
        ids, starts = tokenizer.pieces_and_word_starts(tf.constant(texts[start:start + 4096]))
        word_ids = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1
        lengths = ids.row_lengths()
        dense_ids = ids.to_tensor(0)
        dense_words = word_ids.to_tensor(-1)
        max_words = int(tf.reduce_max(tf.reduce_max(dense_words, axis=1) + 1)) or 1
        all_keys, _ = ngram_keys(dense_ids, dense_words, max_words)
        num_words = (tf.reduce_max(dense_words, axis=1) + 1).numpy().astype(np.int32)
        pick = np.maximum(num_words - 1, 0)
        chosen = all_keys.numpy()[:, 0, :][np.arange(len(pick)), pick]
        keys.append(np.where(num_words > 0, chosen, 0))
        counts.append(np.where(lengths.numpy() > 0, num_words, 0).astype(np.int32))
    return np.concatenate(keys), np.concatenate(counts)


def lookup_table(keys: np.ndarray, values: np.ndarray, default: float) -> tf.lookup.StaticHashTable:
    """An int64 -> float32 table; a key listed twice keeps its largest value (distinct texts
    can share pieces, e.g. two words that both become `[UNK]`). An empty list gives a table
    that finds nothing."""
    keys = np.asarray(keys, np.int64)
    values = np.asarray(values, np.float32)
    if len(keys):
        order = np.lexsort((-values, keys))  # by key, largest value first
        keys, values = keys[order], values[order]
        first = np.concatenate([[True], keys[1:] != keys[:-1]])
        keys, values = keys[first], values[first]
    if not len(keys):  # a table cannot be empty: -1 is no key (keys are >= 0)
        keys, values = np.array([-1], np.int64), np.array([default], np.float32)
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.int64), tf.constant(values, tf.float32))
    return tf.lookup.StaticHashTable(initializer, default_value=float(default))


def match_units(token_ids: tf.Tensor, word_ids: tf.Tensor, table: tf.lookup.StaticHashTable,
                max_words: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Finds the n-grams of `table` (value > 0 = listed) in a batch and makes them units.

    At each word the longest listed n-gram (n <= `max_words`) starting there is its match;
    matches are taken from left to right, skipping any that overlaps one already taken.

    Args:
      token_ids, word_ids: [B, L] int32 (see `word_hashes`).
      table: from `lookup_table`, keyed by `ngram_keys`/`text_keys`.

    Returns:
      `(group_ids, in_unit)`: [B, L] int32 group of each piece (the index of the first word
      of its matched n-gram, or its own word; -1 where `word_ids` is -1), and [B, L] bool,
      True on pieces of a matched n-gram.
    """
    word_ids = tf.convert_to_tensor(word_ids, tf.int32)
    keys, valid = ngram_keys(token_ids, word_ids, max_words)  # [B, L, N]
    listed = tf.logical_and(valid, table.lookup(keys) > 0)
    n = tf.range(1, max_words + 1)[None, None, :]
    match_length = tf.reduce_max(tf.where(listed, n, 0), axis=-1)  # [B, L] words, 0 = none

    def step(state, inputs):  # one word slot, the whole batch at once
        until, start, _, _ = state  # [B]: first word after the last match taken; its start
        w, length = inputs
        take = tf.logical_and(length > 0, w >= until)
        until = tf.where(take, w + length, until)
        start = tf.where(take, w, start)
        inside = w < until
        return until, start, tf.where(inside, start, w), inside

    batch, length = tf.shape(word_ids)[0], tf.shape(word_ids)[1]
    zeros = tf.zeros([batch], tf.int32)
    _, _, group_of_word, inside = tf.scan(
        step, (tf.range(length), tf.transpose(match_length)),
        initializer=(zeros, zeros, zeros, tf.zeros([batch], tf.bool)))
    group_of_word, inside = tf.transpose(group_of_word), tf.transpose(inside)  # [B, L]
    real = word_ids >= 0
    safe = tf.maximum(word_ids, 0)
    group_ids = tf.where(real, tf.gather(group_of_word, safe, batch_dims=1), -1)
    in_unit = tf.logical_and(real, tf.gather(inside, safe, batch_dims=1))
    return group_ids, in_unit


def sequence_counts(keys: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """[B, L] float32: how often each word (key slot `[b, w]`) occurs in its sequence; 0 on
    slots that are not words. `keys`, `valid`: [B, L] (the n = 1 slice of `ngram_keys`)."""
    same = tf.logical_and(tf.equal(keys[:, :, None], keys[:, None, :]), valid[:, None, :])
    counts = tf.reduce_sum(tf.cast(same, tf.float32), axis=-1)
    return tf.where(valid, counts, 0.0)
