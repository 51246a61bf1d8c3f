"""Fine-tuning pipelines: NER label alignment and windows, classification truncation, masking
augmentation, per-batch padding and shuffling.

Expected ids come from hand-written vocabularies. The window tests use a vocabulary where a
word's piece count is visible in its spelling ("xyy" = `x ##y ##y`), so every window can be
decoded back into whole words without trusting the pipeline's own bookkeeping.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import TINY_VOCAB, tiny_tokenizer
from tfmask.text import finetuning_data as fd
from tfmask.text import masking, packing
from tfmask.model.encoder import BertEncoder
from tfmask.text.tokenization import SPECIAL_TOKENS, WordPieceTokenizer

PAD, UNK, CLS, SEP, MASK = range(5)

# [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 u=5 .=6 s=7 visit=8 ##ed=9 paris=10 1=11 ,=12
# 000=13 (the vocabulary of `ner_dataset`'s docstring, plus "1,000").
NER_VOCAB = list(SPECIAL_TOKENS) + ["u", ".", "s", "visit", "##ed", "paris", "1", ",", "000"]
# A word "x" + "y" * (k - 1) is exactly k pieces: x ##y ##y ...
XY_VOCAB = list(SPECIAL_TOKENS) + ["x", "##y"]
X, Y = 5, 6


@pytest.fixture(scope="module")
def ner_tokenizer():
    return WordPieceTokenizer(NER_VOCAB)


@pytest.fixture(scope="module")
def xy_tokenizer():
    return WordPieceTokenizer(XY_VOCAB)


def batches(ds):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds]


def one_batch(ds):
    out = batches(ds)
    assert len(out) == 1
    return out[0]


# ----------------------------------------------------------------------------------------------
# NER: label alignment
# ----------------------------------------------------------------------------------------------
def test_ner_tiny_vocab_exact():
    # the | dog ##s | sat | un ##aff ##able | .
    x, y, w = one_batch(fd.ner_dataset([["The", "dogs", "sat", "unaffable", "."]],
                                       [[0, 1, 0, 2, 0]], tiny_tokenizer(), 16, 4))
    ids = {t: i for i, t in enumerate(TINY_VOCAB)}
    expected = [CLS, ids["the"], ids["dog"], ids["##s"], ids["sat"], ids["un"], ids["##aff"],
                ids["##able"], ids["."], SEP]
    np.testing.assert_array_equal(x["token_ids"], [expected])
    np.testing.assert_array_equal(y, [[0, 0, 1, 0, 0, 2, 0, 0, 0, 0]])
    np.testing.assert_array_equal(w, [[0, 1, 1, 0, 1, 1, 0, 0, 1, 0]])
    np.testing.assert_array_equal(x["segment_ids"], np.zeros((1, 10)))
    np.testing.assert_array_equal(x["padding_mask"], np.ones((1, 10)))
    assert x["token_ids"].dtype == x["segment_ids"].dtype == x["padding_mask"].dtype == np.int32
    assert y.dtype == np.int32 and w.dtype == np.float32


def test_ner_docstring_table(ner_tokenizer):
    """The worked table of `ner_dataset`: "U.S." labelled once, a control-character word ->
    [UNK]."""
    x, y, w = one_batch(fd.ner_dataset([["Visited", "U.S.", "\x00", "Paris"]], [[0, 1, 0, 1]],
                                       ner_tokenizer, 16, 4))
    np.testing.assert_array_equal(x["token_ids"], [[2, 8, 9, 5, 6, 7, 6, 1, 10, 3]])
    np.testing.assert_array_equal(y, [[0, 0, 0, 1, 0, 0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(w, [[0, 1, 0, 1, 0, 0, 0, 1, 1, 0]])


def test_basic_tokenizer_splits_word_labelled_once(ner_tokenizer):
    # "1,000" -> 1 , 000 and "U.S." -> u . s . : one label each, on the first piece.
    x, y, w = one_batch(fd.ner_dataset([["1,000", "U.S."]], [[3, 4]], ner_tokenizer, 16, 4))
    np.testing.assert_array_equal(x["token_ids"], [[CLS, 11, 12, 13, 5, 6, 7, 6, SEP]])
    np.testing.assert_array_equal(y, [[0, 3, 0, 0, 4, 0, 0, 0, 0]])
    np.testing.assert_array_equal(w, [[0, 1, 0, 0, 1, 0, 0, 0, 0]])


def test_zero_piece_words_get_unk(ner_tokenizer):
    # Control character, zero-width space (a format character), empty string, only spaces.
    words = ["paris", "\x00", "\u200b", "", "  ", "paris"]
    pieces = fd.word_pieces(tf.constant(words), ner_tokenizer)
    assert pieces.to_list() == [[10], [UNK], [UNK], [UNK], [UNK], [10]]
    x, y, w = one_batch(fd.ner_dataset([words], [[1, 2, 3, 4, 5, 6]], ner_tokenizer, 16, 2))
    np.testing.assert_array_equal(x["token_ids"], [[CLS, 10, UNK, UNK, UNK, UNK, 10, SEP]])
    np.testing.assert_array_equal(y, [[0, 1, 2, 3, 4, 5, 6, 0]])
    np.testing.assert_array_equal(w, [[0, 1, 1, 1, 1, 1, 1, 0]])


def test_word_pieces_ragged_sentences(ner_tokenizer):
    words = tf.ragged.constant([["visited", "U.S."], [], ["\x00"]])
    assert fd.word_pieces(words, ner_tokenizer).to_list() == [
        [[8, 9], [5, 6, 7, 6]], [], [[UNK]]]


# ----------------------------------------------------------------------------------------------
# NER: windows
# ----------------------------------------------------------------------------------------------
def test_sentence_windows_docstring_example():
    # Budget 4, stride 2, words a b c d e with 1 2 1 1 1 pieces (ids 10, 11 12, 13, 14, 15),
    # then an empty sentence and a one-word one.
    pieces = tf.ragged.constant([[[10], [11, 12], [13], [14], [15]], [], [[16]]],
                                ragged_rank=2, dtype=tf.int32)
    labels = tf.ragged.constant([[1, 2, 3, 4, 5], [], [6]], dtype=tf.int32)
    out = fd.sentence_windows(pieces, labels, 6, CLS, SEP, window_stride=2)
    out = {k: v.to_list() if isinstance(v, tf.RaggedTensor) else v.numpy().tolist()
           for k, v in out.items()}
    assert out["token_ids"] == [[2, 10, 11, 12, 13, 3], [2, 11, 12, 13, 14, 3],
                                [2, 13, 14, 15, 3], [2, 3], [2, 16, 3]]
    assert out["labels"] == [[0, 1, 2, 0, 3, 0], [0, 2, 0, 3, 4, 0], [0, 3, 4, 5, 0], [0, 0],
                             [0, 6, 0]]
    assert out["label_weights"] == [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0],
                                    [0, 0], [0, 1, 0]]
    assert out["word_ids"] == [[-1, 0, 1, -1, 2, -1], [-1, 1, -1, 2, 3, -1],
                                 [-1, 2, 3, 4, -1], [-1, -1], [-1, 0, -1]]
    assert out["sentence"] == [0, 0, 0, 1, 2]


def test_empty_sentences_are_one_empty_window_each(xy_tokenizer):
    words = [[], ["xy"], [], []]
    got = batches(fd.ner_windows(words, [[]] + [[1]] + [[]] * 2, xy_tokenizer, 6, 8))
    x, y, w, info = got[0]
    np.testing.assert_array_equal(info["example_index"], [0, 1, 2, 3])
    np.testing.assert_array_equal(x["padding_mask"].sum(1), [2, 4, 2, 2])
    np.testing.assert_array_equal(x["token_ids"][:, :2], [[CLS, SEP], [CLS, X], [CLS, SEP],
                                                          [CLS, SEP]])
    merged = fd.merge_windows(y, info, w, [0, 1, 0, 0])
    assert [m.tolist() for m in merged] == [[], [1], [], []]


def random_xy_sentences(seed, num_sentences=25, max_words=30, long_word=12):
    """Sentences of "x", "xy", "xyy"... words; a few longer than small windows."""
    rng = np.random.default_rng(seed)
    counts, labels = [], []
    for _ in range(num_sentences):
        n = int(rng.integers(0, max_words + 1))
        c = rng.choice([1, 1, 1, 2, 3, 5], size=n)
        c[rng.random(n) < 0.03] = long_word
        counts.append([int(v) for v in c])
        labels.append([int(v) for v in rng.integers(1, 9, size=n)])
    words = [["x" + "y" * (k - 1) for k in c] for c in counts]
    return words, labels, counts


def oracle_windows(counts, budget, stride):
    """The rule of `sentence_windows`, written as plain loops: [(start, end, owned words)]."""
    counts = [min(c, budget) for c in counts]
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    num_words, spans, start = len(counts), [], 0
    while True:
        end = start
        while end < num_words and offset[end + 1] - offset[start] <= budget:
            end += 1
        spans.append((start, end))
        if end >= num_words:
            break
        jump = max(i for i in range(num_words) if offset[i] <= offset[start] + stride)
        start = min(max(jump, start + 1), end)
    owned = [set() for _ in spans]
    for word in range(num_words):
        best = None
        for k, (s, e) in enumerate(spans):
            if s <= word < e:
                left = offset[word] - offset[s] if s > 0 else budget + 1
                right = offset[e] - offset[word + 1] if e < num_words else budget + 1
                if best is None or min(left, right) > best[0]:
                    best = (min(left, right), k)
        owned[best[1]].add(word)
    return [(s, e, o) for (s, e), o in zip(spans, owned)]


def check_windows(batches_, counts, labels, max_sequence_length, stride):
    budget = max_sequence_length - 2
    weight_sum = np.zeros(len(counts))
    starts, seen = {}, {}
    for x, y, w, info in batches_:
        assert x["token_ids"].shape[1] <= max_sequence_length
        for row in range(len(x["token_ids"])):
            n = int(x["padding_mask"][row].sum())
            ids, word_ids = x["token_ids"][row, :n], info["word_ids"][row, :n]
            sentence = int(info["example_index"][row])
            assert ids[0] == CLS and ids[-1] == SEP
            weight_sum[sentence] += w[row].sum()
            # Whole words: every word starts with x (carrying its index and label) and has
            # all its pieces (at most the budget).
            content, index = ids[1:-1], word_ids[1:-1]
            first = np.nonzero(content == X)[0]
            assert np.all(content[np.setdiff1d(np.arange(len(content)), first)] == Y)
            assert np.all(index[first] >= 0) and np.all(np.delete(index, first) == -1)
            lengths = np.diff(np.append(first, len(content)))
            words = index[first]
            np.testing.assert_array_equal(np.diff(words), 1)  # consecutive words
            expected = np.minimum(np.asarray(counts[sentence], int)[words], budget)
            np.testing.assert_array_equal(lengths, expected)
            np.testing.assert_array_equal(y[row, 1:n - 1][first],
                                          np.asarray(labels[sentence])[words])
            starts.setdefault(sentence, []).append(int(words[0]) if len(words) else 0)
            k = seen[sentence] = seen.get(sentence, -1) + 1
            o_start, o_end, o_owned = oracle_windows(counts[sentence], budget, stride)[k]
            assert (o_start, o_end) == ((int(words[0]), int(words[-1]) + 1) if len(words)
                                        else (0, 0))
            assert set(index[first][w[row, 1:n - 1][first] == 1]) == o_owned
    for sentence, num in seen.items():
        assert num + 1 == len(oracle_windows(counts[sentence], budget, stride))
    for sentence, s in starts.items():
        assert s[0] == 0 and np.all(np.diff(s) > 0)
        # A window starts at most `stride` pieces after the previous one, unless one word
        # longer than that sits at its start.
        offsets = np.concatenate([[0], np.cumsum(np.minimum(counts[sentence], budget))])
        for a, b in zip(s, s[1:]):
            assert offsets[b] - offsets[a] <= stride or b == a + 1
    np.testing.assert_array_equal(weight_sum, [len(c) for c in counts])


@pytest.mark.parametrize("max_sequence_length,window_stride",
                         [(6, None), (6, 1), (6, 4), (9, 3), (12, None), (12, 10)])
def test_windows_label_every_word_once(xy_tokenizer, max_sequence_length, window_stride):
    words, labels, counts = random_xy_sentences(max_sequence_length * 31 + (window_stride or 0))
    ds = fd.ner_windows(words, labels, xy_tokenizer, max_sequence_length, 7, window_stride)
    got = batches(ds)
    stride = window_stride or (max_sequence_length - 2) // 2
    check_windows(got, counts, labels, max_sequence_length, stride)
    # Predictions merged back: feeding the labels in as "predictions" must give them back.
    merged = fd.merge_windows([y for _, y, _, _ in got], [i for *_, i in got],
                              [w for _, _, w, _ in got], [len(s) for s in words])
    assert len(merged) == len(words)
    for m, expected in zip(merged, labels):
        np.testing.assert_array_equal(m, expected)
    # Logits [N, L, C] too: each word gets the row of its owning window.
    logits = [np.eye(9, dtype=np.float32)[y] for _, y, _, _ in got]
    merged = fd.merge_windows(logits, [i for *_, i in got], [w for _, _, w, _ in got],
                              [len(s) for s in words])
    for m, expected in zip(merged, labels):
        np.testing.assert_array_equal(m.argmax(-1), expected)


def test_short_sentences_are_one_window_each(xy_tokenizer):
    words, labels, counts = random_xy_sentences(3, num_sentences=600, max_words=4)
    got = batches(fd.ner_windows(words, labels, xy_tokenizer, 32, 8))
    example_index = np.concatenate([i["example_index"] for *_, i in got])
    np.testing.assert_array_equal(example_index, np.arange(len(words)))


def test_word_longer_than_window(xy_tokenizer):
    # Budget 4: the 10-piece word keeps x ##y ##y ##y and its label.
    words = [["x", "x" + "y" * 9, "xy"]]
    got = batches(fd.ner_windows(words, [[1, 2, 3]], xy_tokenizer, 6, 8))
    x, y, w, info = got[0]
    rows = [list(r[m == 1]) for r, m in zip(x["token_ids"], x["padding_mask"])]
    assert rows == [[CLS, X, SEP], [CLS, X, Y, Y, Y, SEP], [CLS, X, Y, SEP]]
    np.testing.assert_array_equal(y[w == 1], [1, 2, 3])
    np.testing.assert_array_equal(info["word_ids"][w == 1], [0, 1, 2])
    merged = fd.merge_windows(y, info, w, [3])
    np.testing.assert_array_equal(merged[0], [1, 2, 3])


def test_ner_dataset_matches_ner_windows(xy_tokenizer):
    words, labels, _ = random_xy_sentences(5)
    plain = batches(fd.ner_dataset(words, labels, xy_tokenizer, 8, 6))
    windows = batches(fd.ner_windows(words, labels, xy_tokenizer, 8, 6))
    assert len(plain) == len(windows)
    for (x, y, w), (x2, y2, w2, _) in zip(plain, windows):
        for k in fd.INPUT_NAMES:
            np.testing.assert_array_equal(x[k], x2[k])
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(w, w2)


def test_merge_windows_rejects_missing_or_duplicate_words():
    info = {"example_index": np.array([0]), "word_ids": np.array([[-1, 0, 1, -1]])}
    pred = np.array([[0, 5, 6, 0]])
    weight = np.array([[0, 1, 1, 0]], np.float32)
    np.testing.assert_array_equal(fd.merge_windows(pred, info, weight, [2])[0], [5, 6])
    with pytest.raises(ValueError, match="exactly once"):
        fd.merge_windows(pred, info, weight, [3])
    with pytest.raises(ValueError, match="exactly once"):
        fd.merge_windows([pred, pred], [info, info], [weight, weight], [2])


def test_ner_argument_checks(xy_tokenizer):
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        fd.ner_dataset([["x", "x"]], [[1]], xy_tokenizer, 8, 2)
    with pytest.raises(ValueError, match="window_stride"):
        fd.ner_dataset([["x"]], [[1]], xy_tokenizer, 8, 2, window_stride=7)
    with pytest.raises(ValueError, match="max_sequence_length"):
        fd.ner_dataset([["x"]], [[1]], xy_tokenizer, 2, 2)


# ----------------------------------------------------------------------------------------------
# Padding, bucketing, shuffling, model inputs
# ----------------------------------------------------------------------------------------------
def test_per_batch_padding(xy_tokenizer):
    # Windows of 3, 7, 4 | 5 tokens: batches padded to 7 and 5, not to 32.
    words = [["x"], ["xyyyy"], ["xy"], ["xyy"]]
    got = batches(fd.ner_dataset(words, [[1]] * 4, xy_tokenizer, 32, 3))
    assert [b[0]["token_ids"].shape for b in got] == [(3, 7), (1, 5)]
    x, y, w = got[0]
    np.testing.assert_array_equal(x["padding_mask"].sum(1), [3, 7, 4])
    np.testing.assert_array_equal(x["token_ids"][0], [CLS, X, SEP, PAD, PAD, PAD, PAD])
    assert np.all(w[x["padding_mask"] == 0] == 0) and np.all(y[x["padding_mask"] == 0] == 0)

    tok = tiny_tokenizer()
    got = batches(fd.classification_dataset(["the cat", "the cat sat on the mat .", "a"],
                                            [0, 1, 0], tok, 32, 2))
    assert [b[0]["token_ids"].shape for b in got] == [(2, 9), (1, 3)]


def test_length_buckets_give_one_static_shape_per_bucket(xy_tokenizer):
    """A batch holds the windows of one bucket padded to the bucket's bound (5, 8, then the
    sequence length 10), `batch_size` rows: a bucket's last batch is filled with rows of
    weight 0. So there is one batch shape per bucket (XLA compiles once per bucket), and
    every word is still labelled exactly once."""
    words, labels, _ = random_xy_sentences(7, num_sentences=60, max_words=6)
    ds = fd.ner_dataset(words, labels, xy_tokenizer, 10, 4, shuffle=True, seed=3,
                        length_buckets=(8, 5, 64))  # 64 > 10: the sequence length bounds
    got, total = batches(ds), 0
    for x, y, w in got:
        lengths = x["padding_mask"].sum(1)
        bound = x["token_ids"].shape[1]
        low = {5: 0, 8: 5, 10: 8}[bound]  # the bucket below's bound
        assert x["token_ids"].shape[0] == 4 and all(low < n <= bound for n in lengths if n)
        assert np.all(w[x["padding_mask"] == 0] == 0) and np.all(y[x["padding_mask"] == 0] == 0)
        total += w.sum()
    assert total == sum(len(s) for s in words)
    assert {b[0]["token_ids"].shape for b in got} == {(4, 5), (4, 8), (4, 10)}
    # As many batches as each bucket needs, whatever the order (the training loop counts them
    # once, unshuffled).
    plain = np.concatenate([x["padding_mask"].sum(1) for x, _, _ in batches(
        fd.ner_dataset(words, labels, xy_tokenizer, 10, 4))])
    sizes = np.bincount(np.digitize(plain, [5, 8], right=True))
    assert len(got) == sum(-(-n // 4) for n in sizes) == len(batches(fd.ner_dataset(
        words, labels, xy_tokenizer, 10, 4, length_buckets=(5, 8))))

    texts = ["a", "the cat", "the cat sat on the mat .", "a cat", "the mat"]
    got = batches(fd.classification_dataset(texts, [0, 1, 1, 0, 1], tiny_tokenizer(), 16, 2,
                                            length_buckets=(4,)))
    # A bucket's batch leaves when it is full; the unfilled ones at the end.
    assert [b[0]["token_ids"].shape for b in got] == [(2, 4), (2, 4), (2, 16)]
    assert [b[2].tolist() for b in got] == [[1, 1], [1, 1], [1, 0]]


def test_shuffle_seeded_and_new_every_epoch():
    texts = [f"{'the ' * (i % 5)}cat" for i in range(40)]
    ds = fd.classification_dataset(texts, list(range(40)), tiny_tokenizer(), 16, 8,
                                   shuffle=True, seed=7)

    def order(d):
        return np.concatenate([y for _, y, _ in batches(d)])

    first, second = order(ds), order(ds)
    assert sorted(first) == sorted(second) == list(range(40))
    assert not np.array_equal(first, second)
    again = fd.classification_dataset(texts, list(range(40)), tiny_tokenizer(), 16, 8,
                                      shuffle=True, seed=7)
    np.testing.assert_array_equal(order(again), first)
    np.testing.assert_array_equal(order(fd.classification_dataset(
        texts, list(range(40)), tiny_tokenizer(), 16, 8)), np.arange(40))


def test_element_spec_keys_are_encoder_inputs(xy_tokenizer):
    encoder = BertEncoder(vocabulary_size=len(XY_VOCAB), num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    names = set(encoder.input.keys())
    assert names == set(fd.INPUT_NAMES)
    ner = fd.ner_dataset([["x"]], [[1]], xy_tokenizer, 16, 2, mask_rate=0.1)
    sentiment = fd.classification_dataset(["x"], [1], xy_tokenizer, 16, 2, mask_rate=0.1)
    windows = fd.ner_windows([["x"]], [[1]], xy_tokenizer, 16, 2)
    for spec in (ner.element_spec, sentiment.element_spec, windows.element_spec):
        assert set(spec[0]) == names
        assert all(s.dtype == tf.int32 and s.shape.as_list() == [None, None]
                   for s in spec[0].values())
    assert set(windows.element_spec[3]) == {"example_index", "word_ids"}


def test_token_classifier_fits_on_ner_dataset(xy_tokenizer):
    """Keras takes the (x, y, sample_weight) batches, whose length changes batch to batch."""
    keras.utils.set_random_seed(0)
    encoder = BertEncoder(vocabulary_size=len(XY_VOCAB), num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    logits = keras.layers.Dense(9)(encoder.output["sequence_output"])
    model = keras.Model(encoder.input, logits)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"])
    words, labels, _ = random_xy_sentences(11, num_sentences=12, max_words=8)
    ds = fd.ner_dataset(words, labels, xy_tokenizer, 16, 4, shuffle=True, mask_rate=0.1)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ----------------------------------------------------------------------------------------------
# Classification: truncation
# ----------------------------------------------------------------------------------------------
def test_truncate_pieces_512_split():
    ids = tf.RaggedTensor.from_row_lengths(tf.range(600 + 300 + 510), [600, 300, 510])
    out = packing.truncate_pieces(ids, 510, "head_tail").to_list()
    np.testing.assert_array_equal(out[0], list(range(128)) + list(range(600 - 382, 600)))
    np.testing.assert_array_equal(out[1], range(600, 900))  # fits: unchanged
    np.testing.assert_array_equal(out[2], range(900, 1410))
    head = packing.truncate_pieces(ids, 510, "head").to_list()
    np.testing.assert_array_equal(head[0], range(510))
    with pytest.raises(ValueError, match="truncation"):
        packing.truncate_pieces(ids, 510, "tail")


@pytest.mark.parametrize("truncation,expected", [
    # budget 8: head = first 8; head_tail = first 2 (ceil(8 / 4)) + last 6.
    ("head", ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]),
    ("head_tail", ["t0", "t1", "t6", "t7", "t8", "t9", "t10", "t11"]),
])
def test_classification_truncation_exact(truncation, expected):
    vocab = list(SPECIAL_TOKENS) + [f"t{i}" for i in range(12)]
    tok = WordPieceTokenizer(vocab)
    text = " ".join(f"T{i}" for i in range(12))
    x, y, w = one_batch(fd.classification_dataset([text, "t3"], [1, 0], tok, 10, 4,
                                                  truncation=truncation))
    ids = [vocab.index(t) for t in expected]
    np.testing.assert_array_equal(x["token_ids"], [[CLS] + ids + [SEP],
                                                   [CLS, vocab.index("t3"), SEP] + [PAD] * 7])
    np.testing.assert_array_equal(x["padding_mask"], [[1] * 10, [1] * 3 + [0] * 7])
    np.testing.assert_array_equal(y, [1, 0])
    np.testing.assert_array_equal(w, [1.0, 1.0])
    assert y.dtype == np.int32 and w.dtype == np.float32


# ----------------------------------------------------------------------------------------------
# Masking augmentation
# ----------------------------------------------------------------------------------------------
def synthetic_batch(rows=100, length=102, seed=0):
    """[CLS] pieces [SEP] [PAD]..., with some [UNK]s, rows of different lengths."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, length + 1, size=rows)
    ids = rng.integers(5, 24, size=(rows, length)).astype(np.int32)
    ids[rng.random((rows, length)) < 0.02] = UNK
    positions = np.arange(length)[None, :]
    ids[:, 0] = CLS
    ids[positions == lengths[:, None] - 1] = SEP
    ids[positions >= lengths[:, None]] = PAD
    mask = (positions < lengths[:, None]).astype(np.int32)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_mask_augment_rate_and_specials():
    x = synthetic_batch()
    tok = tiny_tokenizer()
    eligible = (x["padding_mask"] == 1) & ~np.isin(x["token_ids"], tok.special_ids)
    n = int(eligible.sum())
    assert n > 4000
    out = masking.mask_augment(x, 0.15, MASK, tok.special_ids, tf.constant([1, 2]))
    out = {k: np.asarray(v) for k, v in out.items()}
    changed = out["token_ids"] != x["token_ids"]
    assert np.all(out["token_ids"][changed] == MASK)
    assert not np.any(changed & ~eligible)  # [CLS], [SEP], [UNK], padding never masked
    stderr = np.sqrt(n * 0.15 * 0.85)
    assert abs(changed.sum() - 0.15 * n) < 4 * stderr, (changed.sum(), 0.15 * n)
    np.testing.assert_array_equal(out["segment_ids"], x["segment_ids"])
    np.testing.assert_array_equal(out["padding_mask"], x["padding_mask"])
    # Deterministic for a seed, different for another.
    again = masking.mask_augment(x, 0.15, MASK, tok.special_ids, tf.constant([1, 2]))
    np.testing.assert_array_equal(again["token_ids"], out["token_ids"])
    other = masking.mask_augment(x, 0.15, MASK, tok.special_ids, tf.constant([1, 3]))
    assert not np.array_equal(other["token_ids"], out["token_ids"])
    # Rates 0 and 1 are exact.
    none = masking.mask_augment(x, 0.0, MASK, tok.special_ids, tf.constant([1, 2]))
    np.testing.assert_array_equal(none["token_ids"], x["token_ids"])
    full = np.asarray(masking.mask_augment(x, 1.0, MASK, tok.special_ids,
                                           tf.constant([1, 2]))["token_ids"])
    np.testing.assert_array_equal(full == MASK, eligible | (x["token_ids"] == MASK))
    with pytest.raises(ValueError, match="rate"):
        masking.mask_augment(x, 1.5, MASK, tok.special_ids, tf.constant([1, 2]))


def test_mask_rate_in_datasets_seeded_and_new_every_epoch(xy_tokenizer):
    words, labels, _ = random_xy_sentences(13, num_sentences=30)

    def build(seed, rate=0.3):
        return fd.ner_dataset(words, labels, xy_tokenizer, 12, 8, seed=seed, mask_rate=rate)

    clean = batches(build(0, rate=0.0))
    ds = build(0)
    epoch1, epoch2 = batches(ds), batches(ds)
    fresh = batches(build(0))

    def ids(run):
        return np.concatenate([x["token_ids"].ravel() for x, _, _ in run])

    np.testing.assert_array_equal(ids(epoch1), ids(fresh))  # deterministic for a seed
    assert not np.array_equal(ids(epoch1), ids(epoch2))  # a new mask every epoch
    original = ids(clean)
    for run in (epoch1, epoch2):
        masked = ids(run) != original
        assert np.all(ids(run)[masked] == MASK)
        assert np.all(np.isin(original[masked], [X, Y]))  # never [CLS], [SEP], padding
        assert 0.2 < masked.sum() / np.isin(original, [X, Y]).sum() < 0.4
        for (_, y, w), (_, y0, w0) in zip(run, clean):  # labels and weights untouched
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(w, w0)


def test_mask_rate_in_classification_dataset():
    texts = ["the cat sat on the mat ."] * 20
    sentiment = fd.classification_dataset(texts, [1] * 20, tiny_tokenizer(), 16, 5,
                                          mask_rate=0.5, seed=2)
    a, b = batches(sentiment), batches(sentiment)
    first = np.concatenate([x["token_ids"] for x, _, _ in a])
    assert not np.array_equal(first, np.concatenate([x["token_ids"] for x, _, _ in b]))
    assert np.all(first[:, 0] == CLS) and np.all(first[:, -1] == SEP)
    assert 0.35 < (first == MASK).sum() / (20 * 7) < 0.65


# ----------------------------------------------------------------------------------------------
# The shared dataset checks (tests/helpers.py)
# ----------------------------------------------------------------------------------------------
def test_word_pieces_of_one_sentence_or_many_agree_eagerly_and_in_tf_data(ner_tokenizer):
    from helpers import run_dataset_test

    words = tf.ragged.constant([["Visited", "U.S.", "\x00", "Paris"], ["1,000"], [],
                                ["paris", "visited"]])
    pieces = run_dataset_test(lambda w: fd.word_pieces(w, ner_tokenizer), words,
                              unbatched="example")
    assert pieces.to_list()[0] == [[8, 9], [5, 6, 7, 6], [1], [10]]


def test_sequences_agree_eagerly_and_in_tf_data_and_feed_the_encoder():
    """Single texts and pairs, ragged and padded to `max_sequence_length`: each row is
    built alone, and the padded inputs are exactly the encoder's."""
    from helpers import run_dataset_test
    from tfmask.text import packing

    tok = tiny_tokenizer()
    first = tok.tokenize_words(["the cat sat on the mat .", "a dog", "unaffable"]).merge_dims(1, 2)
    second = tok.tokenize_words(["hello", "the big dog sat on a mat", ""]).merge_dims(1, 2)
    encoder = BertEncoder(vocabulary_size=len(TINY_VOCAB), num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    special = {"cls_token_id": CLS, "sep_token_id": SEP, "pad_token_id": PAD,
               "max_sequence_length": 9}
    for truncation in ("head", "head_tail"):
        run_dataset_test(lambda a: packing.build_sequences(
            a, truncation=truncation, padding=None, **special), first, unbatched="row")
    run_dataset_test(lambda a, b: packing.build_sequences(a, b, padding=None, **special),
                     (first, second), unbatched="row")
    padded = run_dataset_test(
        lambda a, b: packing.build_sequences(a, b, padding="max_length", **special),
        (first, second), unbatched="row", model=encoder)
    assert padded["token_ids"].shape == (3, 9)


def test_mask_augment_agrees_eagerly_and_in_tf_data_and_feeds_the_encoder():
    from helpers import run_dataset_test
    from tfmask.text import masking

    x = synthetic_batch(rows=6, length=12)
    encoder = BertEncoder(vocabulary_size=len(TINY_VOCAB), num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    # One seed per batch: a row's mask depends on its batch, so rows are not checked alone.
    out = run_dataset_test(lambda x: masking.mask_augment(
        x, 0.4, MASK, tiny_tokenizer().special_ids, tf.constant([1, 2])), x, model=encoder,
        unbatched=None)
    assert np.any(np.asarray(out["token_ids"]) == MASK)


def test_builders_feed_the_task_models(xy_tokenizer):
    """NER batches feed a TokenClassifier and sentiment batches a SequenceClassifier."""
    from helpers import assert_dataset_feeds_model
    from tfmask.model import SequenceClassifier, TokenClassifier

    encoder = BertEncoder(vocabulary_size=len(XY_VOCAB), num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    words, labels, _ = random_xy_sentences(5, num_sentences=6, max_words=6)
    ner = fd.ner_dataset(words, labels, xy_tokenizer, 16, 4, mask_rate=0.2)
    logits = assert_dataset_feeds_model(ner, TokenClassifier(encoder, num_classes=9))
    assert logits.shape[0] == 4 and logits.shape[-1] == 9  # label ids 1..8
    sentiment = fd.classification_dataset(["x xy", "xyy x x", "x"], [0, 1, 2], xy_tokenizer,
                                          16, 2, mask_rate=0.2)
    logits = assert_dataset_feeds_model(sentiment, SequenceClassifier(encoder, num_classes=3))
    assert tuple(logits.shape) == (2, 3)
