"""Masking: selection statistics, the 80/10/10 split, layout of the MLM contract, whole-word
selection, seeding and argument checks.

Statistics run over 4000 packed sequences of length 128 with varied real lengths.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfmask.config import MaskingConfig
from tfmask.text import masking, packing

VOCAB_SIZE = 1000
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
UNUSED = (7, 9)  # "[unused*]"-like placeholders: special, never selected nor drawn
SPECIAL = [PAD, UNK, CLS, SEP, MASK, *UNUSED]
LENGTH = 128
NUM_SEQUENCES = 4000


def make_features(num, length, seed=0, unk_prob=0.02):
    """Packed features with random real lengths (some empty), random words of 1-4 pieces and
    a few [UNK] / unused ids inside the content."""
    rng = np.random.default_rng(seed)
    rows, starts = [], []
    for _ in range(num):
        n = int(rng.integers(0, length - 1)) if rng.random() > 0.02 else 0
        ids = rng.integers(10, VOCAB_SIZE, n)
        special = rng.random(n) < unk_prob
        ids[special] = rng.choice([UNK, *UNUSED], int(special.sum()))
        s = rng.random(n) < 0.6
        if n:
            s[0] = True
        rows.append(ids.astype(np.int32))
        starts.append(s)
    ids = tf.RaggedTensor.from_row_lengths(np.concatenate(rows), [len(r) for r in rows])
    word_starts = tf.RaggedTensor.from_row_lengths(np.concatenate(starts),
                                                   [len(r) for r in rows])
    return packing.finalize(ids, word_starts, length, CLS, SEP, PAD)


@pytest.fixture(scope="module")
def features():
    return make_features(NUM_SEQUENCES, LENGTH)


def mask(features, seed=(1, 2), strategy="random", **kwargs):
    """`kwargs`: other `MaskingConfig` fields."""
    config = MaskingConfig(strategy=strategy, **kwargs)
    out = masking.apply_masking(features, tf.constant(seed), config, vocabulary_size=VOCAB_SIZE,
                                mask_token_id=MASK, special_ids=SPECIAL)
    return {k: v.numpy() for k, v in out.items()}


def selected_matrix(out):
    """[B, L] bool: positions listed in used slots."""
    sel = np.zeros(out["token_ids"].shape, bool)
    rows, slots = np.nonzero(out["mask_weights"])
    sel[rows, out["mask_positions"][rows, slots]] = True
    return sel


def selectable(features):
    token_ids = features["token_ids"].numpy()
    return (features["word_ids"].numpy() >= 0) & ~np.isin(token_ids, SPECIAL)


def test_selection_rate_is_unbiased(features):
    out = mask(features, max_predictions=40)
    sel = selected_matrix(out)
    n = selectable(features).sum(axis=1)
    k = sel.sum(axis=1)
    # Stochastic rounding: every sequence predicts floor or ceil of 15% of its pieces...
    assert np.all((k == np.floor(0.15 * n)) | (k == np.ceil(0.15 * n)))
    # ... and on average exactly 15%: within 1.5 points, and in fact far closer (the
    # standard error over ~240k pieces is ~0.0001, so a floor-only rounding bias of ~0.008
    # would fail the second check).
    assert abs(k.sum() / n.sum() - 0.15) < 0.015
    assert abs(k.sum() / n.sum() - 0.15) < 0.002


@pytest.mark.parametrize("rate", [0.05, 0.3])
def test_other_selection_rates(features, rate):
    out = mask(features, selection_rate=rate, max_predictions=LENGTH)
    rate_seen = selected_matrix(out).sum() / selectable(features).sum()
    assert abs(rate_seen - rate) < 0.015


def test_80_10_10_split(features):
    out = mask(features, max_predictions=40)
    original = features["token_ids"].numpy()
    sel = selected_matrix(out)
    new, old = out["token_ids"][sel], original[sel]
    assert len(new) > 30_000
    to_mask = np.mean(new == MASK)
    to_random = np.mean((new != MASK) & (new != old))
    kept = np.mean(new == old)
    assert abs(to_mask - 0.8) < 0.03
    assert abs(to_random - 0.1) < 0.03
    assert abs(kept - 0.1) < 0.03
    # Random replacements are real tokens: never a special id, always inside the vocabulary.
    replaced = new[(new != MASK) & (new != old)]
    assert not np.isin(replaced, SPECIAL).any()
    assert replaced.min() >= 0 and replaced.max() < VOCAB_SIZE
    # Replacements are spread over the vocabulary, not one id.
    assert len(np.unique(replaced)) > 500


def test_only_selected_positions_change_and_specials_never_selected(features):
    out = mask(features, max_predictions=40)
    original = features["token_ids"].numpy()
    sel = selected_matrix(out)
    np.testing.assert_array_equal(out["token_ids"][~sel], original[~sel])
    assert not sel[features["padding_mask"].numpy() == 0].any()  # padding
    assert not sel[:, 0].any()  # [CLS]
    assert not np.isin(original[sel], SPECIAL).any()  # [SEP], [UNK], unused ids
    # The content does hold [UNK] and unused ids, so this is not vacuous.
    assert np.isin(original, [UNK, *UNUSED]).sum() > 1000
    # Features that masking does not touch pass through.
    for key in ("segment_ids", "padding_mask", "word_ids"):
        np.testing.assert_array_equal(out[key], features[key].numpy())


#: Strategies that need only `token_ids` and `word_ids` (the listed ones need the pipeline's
#: tables: tests/test_masking_strategies.py).
PLAIN = [s for s in sorted(masking.STRATEGIES) if s not in masking.LISTED_STRATEGIES]


@pytest.mark.parametrize("strategy", PLAIN)
def test_mlm_contract_layout(features, strategy):
    out = mask(features, strategy=strategy, max_predictions=20)
    original = features["token_ids"].numpy()
    positions, ids, weights = out["mask_positions"], out["mask_ids"], out["mask_weights"]
    assert positions.shape == ids.shape == weights.shape == (NUM_SEQUENCES, 20)
    assert positions.dtype == np.int32 and ids.dtype == np.int32
    assert weights.dtype == np.float32
    assert set(np.unique(weights)) <= {0.0, 1.0}
    used = weights == 1.0
    # Used slots form a prefix: ones then zeros.
    assert np.all(np.diff(used.astype(int), axis=1) <= 0)
    # Positions ascend strictly in used slots; unused slots hold 0 (position and id).
    for b in range(NUM_SEQUENCES):
        p = positions[b, used[b]]
        assert np.all(np.diff(p) > 0)
    assert not positions[~used].any() and not ids[~used].any()
    # mask_ids are the original tokens at the selected positions.
    np.testing.assert_array_equal(np.take_along_axis(original, positions, 1)[used], ids[used])
    # The number of used slots matches the changed-or-kept selected positions.
    assert used.sum() == selected_matrix(out).sum()


GROUPED = [s for s in PLAIN if s != "random"]  # whole_word, span


@pytest.mark.parametrize("strategy", GROUPED)
def test_grouped_strategies_select_whole_words(features, strategy):
    out = mask(features, strategy=strategy, max_predictions=40)
    word_ids = features["word_ids"].numpy()
    sel = selected_matrix(out)
    can = selectable(features)
    multi_piece_words_selected = 0
    for b in range(NUM_SEQUENCES):
        chosen = np.unique(word_ids[b][sel[b]])
        assert np.all(chosen >= 0)
        # Every (selectable) piece of a chosen word is selected, never part of a word.
        np.testing.assert_array_equal(sel[b], np.isin(word_ids[b], chosen) & can[b])
        multi_piece_words_selected += sum((word_ids[b] == w).sum() > 1 for w in chosen)
    assert multi_piece_words_selected > 1000
    # Whole words still cost 15% of the pieces on average (the word at the budget's edge is
    # taken with probability room / size, so there is no downward bias).
    assert abs(sel.sum() / can.sum() - 0.15) < 0.015


@pytest.mark.parametrize("strategy", GROUPED)
def test_grouped_strategies_respect_max_predictions(features, strategy):
    out = mask(features, strategy=strategy, selection_rate=0.5, max_predictions=6)
    word_ids = features["word_ids"].numpy()
    sel, can = selected_matrix(out), selectable(features)
    assert sel.sum(axis=1).max() <= 6
    assert sel.sum(axis=1).max() >= 5
    for b in range(0, NUM_SEQUENCES, 10):  # still whole words only
        chosen = np.unique(word_ids[b][sel[b]])
        np.testing.assert_array_equal(sel[b], np.isin(word_ids[b], chosen) & can[b])


def test_random_strategy_splits_words(features):
    # Token-level masking ignores word boundaries: some words are only partly selected.
    out = mask(features, strategy="random", max_predictions=40)
    word_ids = features["word_ids"].numpy()
    sel = selected_matrix(out)
    partial = 0
    for b in range(200):
        for w in np.unique(word_ids[b][sel[b]]):
            partial += not sel[b][word_ids[b] == w].all()
    assert partial > 0


def test_seeded(features):
    small = {k: v[:200] for k, v in features.items()}
    a, b = mask(small, seed=(5, 7)), mask(small, seed=(5, 7))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    for seed in [(5, 8), (6, 7)]:
        c = mask(small, seed=seed)
        assert not np.array_equal(a["mask_positions"], c["mask_positions"])
        assert not np.array_equal(a["token_ids"], c["token_ids"])


def test_seeded_in_graph_matches_eager(features):
    small = {k: v[:50] for k, v in features.items()}
    kwargs = {"vocabulary_size": VOCAB_SIZE, "mask_token_id": MASK, "special_ids": SPECIAL}
    fn = tf.function(lambda f, s: masking.apply_masking(f, s, MaskingConfig(), **kwargs))
    graph = fn(small, tf.constant([3, 4], tf.int64))
    eager = mask(small, seed=(3, 4))
    for key in eager:
        np.testing.assert_array_equal(graph[key].numpy(), eager[key])


def test_max_predictions_cap(features):
    out = mask(features, selection_rate=0.5, max_predictions=5)
    assert out["mask_positions"].shape == (NUM_SEQUENCES, 5)
    count = out["mask_weights"].sum(axis=1)
    n = selectable(features).sum(axis=1)
    assert count.max() == 5
    # Token-level: the cap binds exactly when half the sequence is more than 5 pieces.
    np.testing.assert_array_equal(count[n >= 12], 5)
    assert selected_matrix(out).sum() == count.sum()


def test_all_mask_token(features):
    out = mask(features, mask_token_rate=1.0, random_token_rate=0.0, max_predictions=40)
    sel = selected_matrix(out)
    assert sel.sum() > 0 and np.all(out["token_ids"][sel] == MASK)


def test_no_replacement_keeps_input(features):
    out = mask(features, mask_token_rate=0.0, random_token_rate=0.0, max_predictions=40)
    np.testing.assert_array_equal(out["token_ids"], features["token_ids"].numpy())
    assert out["mask_weights"].sum() > 0  # still predicted, just not corrupted


def test_all_random(features):
    out = mask(features, mask_token_rate=0.0, random_token_rate=1.0, max_predictions=40)
    sel = selected_matrix(out)
    new, old = out["token_ids"][sel], features["token_ids"].numpy()[sel]
    assert not np.isin(new, SPECIAL).any()
    assert np.mean(new != old) > 0.99  # equal only by a 1-in-990 coincidence


def test_zero_selection_rate(features):
    out = mask(features, selection_rate=0.0)
    assert not out["mask_weights"].any() and not out["mask_positions"].any()
    np.testing.assert_array_equal(out["token_ids"], features["token_ids"].numpy())


@pytest.mark.parametrize("kwargs", [
    {"selection_rate": 1.5}, {"selection_rate": -0.1}, {"mask_token_rate": -0.1},
    {"random_token_rate": -0.1}, {"mask_token_rate": 0.9, "random_token_rate": 0.2},
])
def test_bad_rates_raise(features, kwargs):
    with pytest.raises(ValueError):
        mask(features, **kwargs)


def test_max_predictions_longer_than_sequence_raises():
    small = make_features(2, 16)
    with pytest.raises(ValueError, match="max_predictions"):
        mask(small, max_predictions=17)
    assert mask(small, max_predictions=16)["mask_positions"].shape == (2, 16)


def test_unknown_strategy_raises(features):
    with pytest.raises(ValueError, match="--masking must be one of random"):
        mask(features, strategy="bogus")


def test_token_word_ids():
    word_ids = tf.constant([[-1, 0, 0, 1, -1, -1]])
    assert masking.token_word_ids(word_ids).numpy().tolist() == [[-1, 1, 2, 3, -1, -1]]


# ---------------------------------------------------------------------------------------------
# Mixtures, the selection-rate schedule and selection priorities
# ---------------------------------------------------------------------------------------------
def splits_a_word(features, out):
    """[B] bool: the row has a word with some but not all of its pieces selected."""
    sel, word_ids = selected_matrix(out), features["word_ids"].numpy()
    real = selectable(features)
    # A word is split when some of its selectable pieces are selected and others are not.
    flat = np.where(real, np.arange(len(sel))[:, None] * LENGTH + word_ids, -1)
    chosen = np.bincount(flat[real & sel], minlength=sel.size)
    pieces = np.bincount(flat[real], minlength=sel.size)
    split_words = (chosen > 0) & (chosen < pieces)
    return split_words.reshape(sel.shape).any(axis=1)


def test_mixture_draws_a_strategy_per_sequence(features):
    """`whole_word:0.3,random:0.7`: whole-word rows never split a word, so the share of rows
    that do is 0.7 times that of pure token-level masking; the rate stays 15%."""
    pure = splits_a_word(features, mask(features, strategy="random", max_predictions=40)).mean()
    out = mask(features, strategy="whole_word:0.3,random:0.7", max_predictions=40)
    mixed = splits_a_word(features, out).mean()
    assert pure > 0.3  # the test has power: token-level masking often splits a word
    assert abs(mixed - 0.7 * pure) < 0.04, (mixed, pure)
    rate = selected_matrix(out).sum() / selectable(features).sum()
    assert abs(rate - 0.15) < 0.005
    # A one-part mixture is that strategy, mask for mask.
    one = mask(features, strategy="span:1", max_predictions=40)
    np.testing.assert_array_equal(one["token_ids"], mask(features, strategy="span",
                                                         max_predictions=40)["token_ids"])


@pytest.mark.parametrize("progress,expected", [(0.0, 0.4), (0.5, 0.275), (1.0, 0.15)])
def test_selection_rate_schedule(features, progress, expected):
    """0.4 -> 0.15 linearly over training: the measured rate at each point of progress."""
    config = MaskingConfig(selection_rate=0.4, final_selection_rate=0.15, max_predictions=LENGTH)
    assert abs(float(masking.scheduled_rate(config, progress)) - expected) < 1e-6
    out = masking.apply_masking(features, tf.constant((3, 4)), config,
                                vocabulary_size=VOCAB_SIZE, mask_token_id=MASK,
                                special_ids=SPECIAL, progress=tf.constant(progress))
    rate = selected_matrix({k: v.numpy() for k, v in out.items()}).sum() / \
        selectable(features).sum()
    assert abs(rate - expected) < 0.005


def test_priority_sets_selection_odds():
    """Words of priority log(4) are chosen 4 times as often as words of priority 0: one word
    of 64 per sequence, half of them preferred, so 4*32 / (4*32 + 32) = 80% of choices."""
    rows, length = 4000, 66
    token_ids = np.full([rows, length], 50, np.int32)
    token_ids[:, 0], token_ids[:, -1] = CLS, SEP
    word_ids = np.concatenate([[-1], np.arange(64), [-1]]).astype(np.int32)
    word_ids = np.tile(word_ids, [rows, 1])
    preferred = np.zeros([rows, length], bool)
    preferred[:, 1:65:2] = True
    priority = np.where(preferred, np.log(4.0), 0.0).astype(np.float32)
    out = masking.mask_tokens(token_ids, word_ids, tf.constant((5, 6)), vocabulary_size=100,
                              mask_token_id=MASK, special_ids=SPECIAL, selection_rate=1 / 64,
                              max_predictions=4, priority=tf.constant(priority))
    weights, positions = out["mask_weights"].numpy(), out["mask_positions"].numpy()
    assert np.all(weights.sum(axis=1) == 1)
    share = preferred[np.arange(rows), positions[:, 0]].mean()
    assert abs(share - 0.8) < 0.025, share
