"""Masked-language-model masking as pure, seeded tensor functions.

Strategies: "random" (token level, BERT), "whole_word" (all pieces of a chosen word, BERT's
whole-word masking), "span" (contiguous runs of whole words with geometric lengths, SpanBERT).
"entity" (listed entities as units, preferred), "keyword" (words drawn with odds growing with
their TF-IDF) and "pmi" (listed high-PMI n-grams as units) match lists from a first pass over
the training text (`corpus_statistics.py`; matching in `ngrams.py`).
`apply_masking` applies the one a `MaskingConfig` names. Fine-tuning's masking augmentation
(`mask_augment`, a regulariser that only replaces pieces with `[MASK]`) lives here too.

Every strategy is one function of tensors and an explicit `seed` (a `[2]` int tensor for
TensorFlow's stateless random ops): the same inputs and seed give the same masks, and a new
seed per step (the pipeline derives it from `(seed, step)`) gives a fresh mask every time an
example is seen. There are no flags, no global random state and no Python loops over tokens.

All strategies share one selection routine over *words*: random (token-level) masking is the
case where every piece is its own word. Per sequence:

1. `n` = number of selectable pieces (not special, not padding, `word_ids >= 0`);
2. `k = min(max_predictions, floor(selection_rate * n + u))`, `u ~ U[0, 1)`, so the expected
   number of masked pieces is exactly `selection_rate * n` (stochastic rounding);
3. words are visited in a random order and taken while their pieces still fit in `k`; the
   first word that does not fit is taken with probability (room left / its size), so the
   expected count stays `k` for multi-piece words too;
4. each chosen piece becomes `[MASK]` with probability `mask_token_rate`, a random
   non-special token with probability `random_token_rate`, and stays itself otherwise.

Worked example, whole-word masking, `k = 3`:

    tokens     [CLS] the  un   ##aff ##able cat  [SEP] [PAD]
    word_ids    -1   0    1    1     1      2    -1    -1
    random word order: 1, 2, 0  -> word 1 (3 pieces) fits; no room is left for word 2
    mask_positions [2, 3, 4, 0 ...]   mask_weights [1, 1, 1, 0 ...]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tfmask.config import MaskingConfig
from tfmask.text import ngrams


def _selection(word_ids, k, max_predictions, seed, priority=None):
    """Chooses whole words for about `k` pieces. Returns a [B, L] bool mask.

    Words are visited in a random order and taken while they fit in `k`. The first word that
    does not fit is taken with probability (room left / its size), so the expected number of
    pieces is exactly `k` for long words and spans too (stopping there would bias the rate
    down by half a word), unless it would overflow the `max_predictions` slots.

    With `priority` ([B, L] float, per piece; a word takes its first piece's value), words
    are visited in descending order of `priority + Gumbel noise`: sampling without
    replacement with odds proportional to `exp(priority)`.
    """
    batch, length = tf.shape(word_ids)[0], tf.shape(word_ids)[1]
    selectable = word_ids >= 0
    # Pieces per word: counts[b, w] = number of pieces of word w in sequence b.  [B, L]
    flat_word = tf.range(batch)[:, None] * length + tf.maximum(word_ids, 0)
    counts = tf.math.unsorted_segment_sum(
        tf.cast(selectable, tf.int32), flat_word, batch * length)
    counts = tf.reshape(counts, [batch, length])
    # A random order over existing words; absent words (count 0) sort last.
    order_seed, boundary_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    score = tf.random.stateless_uniform([batch, length], seed=order_seed)
    if priority is not None:
        # Per word slot w: the priority of word w's first piece (word ids ascend along the
        # sequence, so the first piece of word w is the first position holding w).
        first = tf.math.unsorted_segment_min(
            tf.broadcast_to(tf.range(length)[None, :], [batch, length]),
            tf.where(selectable, flat_word, batch * length), batch * length + 1)[:-1]
        first = tf.minimum(tf.reshape(first, [batch, length]), length - 1)
        word_priority = tf.gather(tf.cast(priority, tf.float32), first, batch_dims=1)
        gumbel = -tf.math.log(-tf.math.log(tf.clip_by_value(score, 1e-12, 1.0 - 1e-7)))
        score = word_priority + gumbel
    score = tf.where(counts > 0, score, -np.inf)
    order = tf.argsort(score, axis=1, direction="DESCENDING", stable=True)  # [B, L]
    sorted_counts = tf.gather(counts, order, batch_dims=1)
    total = tf.cumsum(sorted_counts, axis=1)  # pieces used up to and including each word
    room = k[:, None] - (total - sorted_counts)  # pieces left before each word
    share = tf.cast(room, tf.float32) / tf.cast(tf.maximum(sorted_counts, 1), tf.float32)
    boundary = tf.random.stateless_uniform([batch, length], seed=boundary_seed) < share
    fits = tf.logical_or(total <= k[:, None], tf.logical_and(room > 0, boundary))
    taken_sorted = tf.logical_and(tf.logical_and(fits, total <= max_predictions),
                                  sorted_counts > 0)
    # Back from visiting order to word order.
    taken = tf.gather(taken_sorted, tf.argsort(order, axis=1, stable=True), batch_dims=1)
    return tf.logical_and(selectable,
                          tf.gather(taken, tf.maximum(word_ids, 0), batch_dims=1))


def mask_tokens(
    token_ids: tf.Tensor,
    word_ids: tf.Tensor,
    seed: tf.Tensor,
    *,
    vocabulary_size: int,
    mask_token_id: int,
    special_ids: Sequence[int],
    selection_rate: float = 0.15,
    max_predictions: int = 20,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    priority: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Selects and replaces pieces for MLM, whole words at a time.

    Args:
      token_ids: [B, L] int32 ids.
      word_ids: [B, L] int32 word index of each piece within its sequence; -1 for positions
        that must never be selected (`[CLS]`, `[SEP]`, padding). Pieces sharing a word id are
        selected together. For token-level masking use `token_word_ids(word_ids)`.
      seed: [2] int32/int64, the stateless random seed.
      vocabulary_size: size of the vocabulary (random replacements are drawn from it).
      mask_token_id: id of `[MASK]`.
      special_ids: ids never selected and never drawn as random replacements.
      selection_rate: expected fraction of selectable pieces to predict (a float, or a
        scalar float tensor for a schedule).
      max_predictions: P, the fixed number of prediction slots per sequence.
      mask_token_rate: probability that a selected piece becomes `[MASK]`.
      random_token_rate: probability that it becomes a random token (else it is kept).
      priority: optional [B, L] float32 per piece: words with a higher priority are more
        likely chosen (odds `exp(priority)`, see `_selection`); None: uniformly.

    Returns:
      dict with
        token_ids: [B, L] int32, the masked input.
        mask_positions: [B, P] int32 positions of the selected pieces, ascending, then 0s.
        mask_ids: [B, P] int32 original ids at those positions (0 in unused slots).
        mask_weights: [B, P] float32, 1.0 for used slots, 0.0 for unused ones.
    """
    if isinstance(selection_rate, (int, float)) and not 0.0 <= selection_rate <= 1.0:
        raise ValueError(f"selection_rate must be in [0, 1], got {selection_rate}")
    if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
        raise ValueError("mask_token_rate and random_token_rate must be >= 0 and sum to <= 1, "
                         f"got {mask_token_rate} and {random_token_rate}")
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    word_ids = tf.convert_to_tensor(word_ids, tf.int32)
    length = token_ids.shape[1]
    if length is not None and max_predictions > length:
        raise ValueError(f"max_predictions ({max_predictions}) exceeds the sequence length "
                         f"({length})")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    special = tf.constant(sorted(set(special_ids)), tf.int32)
    is_special = tf.reduce_any(token_ids[..., None] == special, axis=-1)
    word_ids = tf.where(is_special, -1, word_ids)

    # 1-2. How many pieces to predict per sequence (stochastic rounding).  [B]
    num_selectable = tf.reduce_sum(tf.cast(word_ids >= 0, tf.float32), axis=1)
    jitter = tf.random.stateless_uniform(tf.shape(num_selectable), seed=seeds[0])
    rate = tf.cast(selection_rate, tf.float32)
    k = tf.cast(tf.floor(rate * num_selectable + jitter), tf.int32)
    k = tf.minimum(k, max_predictions)

    # 3. Which pieces.  [B, L] -> [B, P] positions in ascending order.
    selected = _selection(word_ids, k, max_predictions, seeds[1], priority)
    seq_len = tf.shape(token_ids)[1]
    rank = tf.where(selected, seq_len - tf.range(seq_len)[None, :], 0)
    top, positions = tf.math.top_k(rank, k=max_predictions, sorted=True)
    used = top > 0  # [B, P]
    mask_positions = tf.where(used, positions, 0)
    mask_ids = tf.where(used, tf.gather(token_ids, mask_positions, batch_dims=1), 0)

    # 4. What they become.  [B, P]
    shape = tf.shape(mask_positions)
    u = tf.random.stateless_uniform(shape, seed=seeds[2])
    allowed = np.setdiff1d(np.arange(vocabulary_size), np.asarray(special_ids, np.int64))
    allowed = tf.constant(allowed.astype(np.int32))
    random_ids = tf.gather(allowed, tf.random.stateless_uniform(
        shape, seed=seeds[3], maxval=tf.size(allowed), dtype=tf.int32))
    new_ids = tf.where(u < mask_token_rate, mask_token_id,
                       tf.where(u < mask_token_rate + random_token_rate, random_ids, mask_ids))
    # Unused slots add 0 at position 0, so duplicates there are harmless.
    delta = tf.where(used, new_ids - mask_ids, 0)
    batch_index = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
    indices = tf.stack([batch_index, mask_positions], axis=-1)
    masked = tf.tensor_scatter_nd_add(token_ids, indices, delta)
    return {
        "token_ids": masked,
        "mask_positions": mask_positions,
        "mask_ids": mask_ids,
        "mask_weights": tf.cast(used, tf.float32),
    }


def token_word_ids(word_ids: tf.Tensor) -> tf.Tensor:
    """Word ids for token-level (random) masking: every selectable piece is its own word."""
    positions = tf.broadcast_to(tf.range(tf.shape(word_ids)[1])[None, :], tf.shape(word_ids))
    return tf.where(word_ids >= 0, positions, -1)


def span_word_ids(word_ids: tf.Tensor, seed: tf.Tensor, mean_span_words: float = 3.0,
                  max_span_words: int = 10) -> tf.Tensor:
    """Groups consecutive words into spans (SpanBERT-style): span ids replace word ids.

    Each word starts a new span with probability `1 / mean_span_words`, so span lengths (in
    words) are geometric with that mean; a span is also cut after `max_span_words` words.
    Masking then selects whole spans, so contiguous runs of words are predicted together.

    Args:
      word_ids: [B, L] int32 word index of each piece, -1 on positions never selected.
      seed: [2] stateless seed.

    Returns: [B, L] int32 span index of each piece, -1 where `word_ids` is -1.
    """
    shape = tf.shape(word_ids)
    # Per word slot w: does word w start a new span?  [B, L] (word ids are < L)
    starts = tf.random.stateless_uniform(shape, seed=seed) < 1.0 / mean_span_words
    index = tf.range(shape[1])[None, :]
    # Start counting afresh at word 0 and never let a span exceed max_span_words words.
    starts = tf.logical_or(starts, index % max_span_words == 0)
    span_of_word = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1  # [B, L]
    spans = tf.gather(span_of_word, tf.maximum(word_ids, 0), batch_dims=1)
    return tf.where(word_ids >= 0, spans, -1)


# ----------------------------------------------------------------------------------------------
# Strategies that match lists from the training text (`corpus_statistics.py` makes the lists
# and their tables; the pipeline adds these functions' results to the batch, see `STRATEGIES`)
# ----------------------------------------------------------------------------------------------
def entity_units(token_ids: tf.Tensor, word_ids: tf.Tensor, entities: tf.lookup.StaticHashTable,
                 max_words: int, bonus: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Entity masking: every listed entity found in a sequence is one unit, every other word
    its own, and entities are preferred.

    Matching is `ngrams.match_units` (longest entity first, no overlap). Entity pieces get
    priority `bonus`, the rest 0, so an entity is `exp(bonus)` times as likely as a word to be
    drawn next, and the words fill what entities leave of the budget:

        tokens      [CLS] john smith visited new york city .   [SEP]
        group_ids    -1   1    1     3       4   4    4    7   -1
        priority      0   3    3     0       3   3    3    0    0     (bonus 3)

    Args:
      token_ids, word_ids: [B, L] int32 (`word_ids` -1 on `[CLS]`, `[SEP]`, padding).
      entities: `ngrams.lookup_table` of the entities' keys (value > 0 = listed).
      max_words: the longest entity in words.
      bonus: the log-odds preference of an entity over a word.

    Returns: `(group_ids [B, L] int32, priority [B, L] float32)`.
    """
    group_ids, in_entity = ngrams.match_units(token_ids, word_ids, entities, max_words)
    return group_ids, tf.where(in_entity, tf.cast(bonus, tf.float32), 0.0)


def keyword_priority(token_ids: tf.Tensor, word_ids: tf.Tensor, idf: tf.lookup.StaticHashTable,
                     strength: float) -> tf.Tensor:
    """Keyword masking's preference: `strength * ln(tf * idf)` for each piece's word, so
    words are drawn with odds proportional to `(tf * idf) ** strength`.

    `tf` counts the word in its packed sequence (packing never crosses a document, so it is
    the count in that window of the document); `idf` comes from the first pass's document
    frequencies (a word no training document holds gets the table's default). Words with
    `tf * idf` below 1e-6 (in nearly every document) count as 1e-6.

    Args:
      token_ids, word_ids: [B, L] int32.
      idf: `ngrams.lookup_table` from one-word keys to IDF.
      strength: 0 = uniform over words; higher = more strongly towards high TF-IDF.

    Returns: [B, L] float32 per piece (0 where `word_ids` is -1).
    """
    keys, valid = ngrams.ngram_keys(token_ids, word_ids, 1)
    keys, valid = keys[..., 0], valid[..., 0]  # [B, L] per word slot
    counts = ngrams.sequence_counts(keys, valid)
    score = tf.math.log(tf.maximum(counts * idf.lookup(keys), 1e-6))  # [B, L] per word
    per_piece = tf.gather(score, tf.maximum(word_ids, 0), batch_dims=1)
    return tf.where(word_ids >= 0, tf.cast(strength, tf.float32) * per_piece, 0.0)


def pmi_units(token_ids: tf.Tensor, word_ids: tf.Tensor, table: tf.lookup.StaticHashTable,
              max_words: int) -> tf.Tensor:
    """PMI masking: every listed high-PMI n-gram found in a sequence is one unit (longest
    first, no overlap), every other word its own; units are drawn uniformly.
    Returns [B, L] int32 group ids."""
    group_ids, _ = ngrams.match_units(token_ids, word_ids, table, max_words)
    return group_ids


#: The strategies whose units come from lists of the training text: their batches need the
#: features `corpus_statistics.MaskingTables.annotate` adds.
LISTED_STRATEGIES = ("entity", "keyword", "pmi")


def _annotation(features: dict, key: str, strategy: str) -> tf.Tensor:
    """`features[key]`, which the pipeline adds for `strategy` from the run's lists."""
    if key not in features:
        raise ValueError(f"masking strategy {strategy!r} reads features[{key!r}], added from "
                         "the first pass over the training text: build batches with "
                         "pretraining_data.pretraining_dataset, or add it with "
                         "corpus_statistics.MaskingTables.annotate")
    return features[key]


#: strategy name -> `fn(features, seed) -> (group_ids, priority)`: the groups of pieces that are
#: selected together ([B, L] int32, -1 = never) and an optional [B, L] float32 preference
#: (see `mask_tokens`; None = uniform). `features` is the packed batch (`token_ids`,
#: `word_ids` and whatever a strategy's pipeline adds).
STRATEGIES = {
    "random": lambda features, seed: (token_word_ids(features["word_ids"]), None),
    "whole_word": lambda features, seed: (features["word_ids"], None),
    "span": lambda features, seed: (span_word_ids(features["word_ids"], seed), None),
    # The pipeline adds these features from the run's lists (`MaskingTables.annotate`).
    "entity": lambda features, seed: (_annotation(features, "entity_group_ids", "entity"),
                                      _annotation(features, "entity_priority", "entity")),
    "keyword": lambda features, seed: (features["word_ids"],
                                       _annotation(features, "keyword_priority", "keyword")),
    "pmi": lambda features, seed: (_annotation(features, "pmi_group_ids", "pmi"), None),
}


def parse_strategy(strategy: str) -> list[tuple[str, float]]:
    """`"span:0.5,random:0.5"` -> `[("span", 0.5), ("random", 0.5)]`; a single name has
    weight 1. The validation with user-facing messages is `tfmask.config`'s."""
    from tfmask.config import parse_masking_strategy

    return parse_masking_strategy(strategy)


def scheduled_rate(masking: MaskingConfig, progress) -> tf.Tensor | float:
    """The selection rate at `progress` (a scalar in [0, 1], the fraction of training done):
    linear from `selection_rate` to `final_selection_rate` (None: constant)."""
    if masking.final_selection_rate is None or progress is None:
        return masking.selection_rate
    progress = tf.clip_by_value(tf.cast(progress, tf.float32), 0.0, 1.0)
    start, end = masking.selection_rate, masking.final_selection_rate
    return start + (end - start) * progress


def _groups(features, seed, strategy: str):
    """Group ids and priority of one strategy or, per sequence, of a mixture's draw."""
    components = parse_strategy(strategy)
    unknown = [name for name, _ in components if name not in STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown masking strategy {unknown[0]!r}; one of {sorted(STRATEGIES)}")
    if len(components) == 1:
        return STRATEGIES[components[0][0]](features, seed)
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(components) + 1))
    results = [STRATEGIES[name](features, s) for (name, _), s in zip(components, seeds[1:])]
    # One component per sequence, drawn with the mixture's weights.
    weights = np.array([w for _, w in components], np.float64)
    edges = tf.constant(np.cumsum(weights / weights.sum())[:-1], tf.float32)
    batch = tf.shape(features["word_ids"])[0]
    u = tf.random.stateless_uniform([batch], seed=seeds[0])
    choice = tf.reduce_sum(tf.cast(u[:, None] >= edges[None, :], tf.int32), axis=1)  # [B]
    group_ids = tf.stack([g for g, _ in results], axis=0)  # [C, B, L]
    group_ids = tf.gather(tf.transpose(group_ids, [1, 0, 2]), choice, batch_dims=1)
    if all(p is None for _, p in results):
        return group_ids, None
    priority = tf.stack([tf.zeros_like(features["word_ids"], tf.float32) if p is None
                         else tf.cast(p, tf.float32) for _, p in results], axis=0)
    priority = tf.gather(tf.transpose(priority, [1, 0, 2]), choice, batch_dims=1)
    return group_ids, priority


def apply_masking(features: dict[str, tf.Tensor], seed: tf.Tensor, masking: MaskingConfig,
                  *, vocabulary_size: int, mask_token_id: int, special_ids: Sequence[int],
                  progress=None) -> dict[str, tf.Tensor]:
    """Masks a batch of packed features as a `MaskingConfig` says.

    Args:
      features: dict with [B, L] `token_ids` and `word_ids` (as built by `packing.finalize`),
        plus what the strategy needs (see `STRATEGIES`).
      seed: [2] stateless seed.
      masking: the config: `strategy` (a key of `STRATEGIES`, or a mixture such as
        `"span:0.5,random:0.5"`: each sequence draws one of them with those odds) picks the
        groups selected together; `selection_rate` (to `final_selection_rate` over training,
        see `scheduled_rate`), `max_predictions`, `mask_token_rate` and `random_token_rate`
        are `mask_tokens`'s arguments.
      vocabulary_size, mask_token_id, special_ids: the tokenizer's, see `mask_tokens`.
      progress: scalar, the fraction of training done (for a rate schedule); None: start.

    Returns:
      `features` with masked `token_ids` plus `mask_positions`, `mask_ids`, `mask_weights`.
    """
    group_seed, mask_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2))
    group_ids, priority = _groups(features, group_seed, masking.strategy)
    out = dict(features)
    out.update(mask_tokens(features["token_ids"], group_ids, mask_seed,
                           vocabulary_size=vocabulary_size, mask_token_id=mask_token_id,
                           special_ids=special_ids,
                           selection_rate=scheduled_rate(masking, progress),
                           max_predictions=masking.max_predictions,
                           mask_token_rate=masking.mask_token_rate,
                           random_token_rate=masking.random_token_rate, priority=priority))
    return out


# ----------------------------------------------------------------------------------------------
# Masking augmentation for fine-tuning
# ----------------------------------------------------------------------------------------------
def mask_augment(x: dict[str, tf.Tensor], mask_rate: float, mask_token_id: int,
                 special_ids: Sequence[int], seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """Replaces about a fraction `mask_rate` of the real, non-special pieces with `[MASK]`.

    A regulariser for fine-tuning (the model cannot lean on any single piece): each eligible
    piece is masked independently with probability `mask_rate`. Padding, `[MASK]` and every
    id in `special_ids` (with `tokenizer.special_ids`: `[CLS]`, `[SEP]`, `[UNK]`, ...) are
    never masked. Labels and weights are not touched, and no piece becomes a random token.

    Args:
      x: dict with `token_ids` [..., L] int32 and `padding_mask` [..., L] int (1 = real);
        other keys are passed through.
      mask_rate: masking probability in [0, 1].
      mask_token_id: id of `[MASK]`.
      special_ids: ids never masked (e.g. `tokenizer.special_ids`).
      seed: [2] int32/int64 stateless seed; the same seed gives the same mask.

    Returns:
      A new dict, `x` with `token_ids` replaced.
    """
    if not 0.0 <= mask_rate <= 1.0:
        raise ValueError(f"mask_rate must be in [0, 1], got {mask_rate}")
    token_ids = x["token_ids"]
    never = sorted({int(i) for i in special_ids} | {int(mask_token_id)})
    special = tf.constant(never, token_ids.dtype)
    is_special = tf.reduce_any(tf.equal(token_ids[..., None], special), axis=-1)
    real = tf.cast(x["padding_mask"], tf.bool)
    u = tf.random.stateless_uniform(tf.shape(token_ids), seed=tf.cast(seed, tf.int64))
    chosen = real & ~is_special & (u < mask_rate)
    out = dict(x)
    out["token_ids"] = tf.where(chosen, tf.constant(mask_token_id, token_ids.dtype), token_ids)
    return out


def mask_augment_dataset(ds: tf.data.Dataset, mask_rate: float, seed: int, *,
                         mask_token_id: int, special_ids: Sequence[int]) -> tf.data.Dataset:
    """Applies `mask_augment` to the `x` of `(x, ...)` batches, with a new seed per batch and
    per epoch (all derived from `seed`). `mask_rate` 0 returns `ds` unchanged."""
    if not 0.0 <= mask_rate <= 1.0:
        raise ValueError(f"mask_rate must be in [0, 1], got {mask_rate}")
    if mask_rate == 0.0:
        return ds
    # Keras `fit` iterates the dataset afresh each epoch; `rerandomize_each_iteration` makes
    # that a new (still seed-determined) stream of batch seeds, so masks differ per epoch.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def apply(batch, batch_seed):
        x, *rest = batch
        step_seed = tf.stack([tf.constant(seed, tf.int64), batch_seed])
        x = mask_augment(x, mask_rate, mask_token_id, special_ids, step_seed)
        return (x, *rest)

    return tf.data.Dataset.zip(ds, batch_seeds).map(apply, num_parallel_calls=tf.data.AUTOTUNE,
                                                    deterministic=True)
