"""Packing: chunking long lines, FULL-SENTENCES / one-line packing, and the sequence builder
(`[CLS] A [SEP] (B [SEP])`, truncation, padding) with its pretraining form `finalize`.

Properties are checked over many random line lengths (seeded NumPy RNG). Piece ids are made
unique (0, 1, 2, ...) so "concatenation equals the input" also proves order is kept.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfmask.text import packing

CLS, SEP, PAD = 2, 3, 0


def random_lines(rng, num_lines, max_len, empty_prob=0.2, first_id=0):
    """Random lines of unique ids; returns (list of id arrays, list of word-start arrays)."""
    lines, starts = [], []
    next_id = first_id
    for _ in range(num_lines):
        n = 0 if rng.random() < empty_prob else int(rng.integers(1, max_len + 1))
        lines.append(np.arange(next_id, next_id + n, dtype=np.int32))
        s = rng.random(n) < 0.6
        if n:
            s[0] = True  # a line starts with a word
        starts.append(s)
        next_id += n
    return lines, starts


def ragged(rows, dtype):
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(np.concatenate(rows) if rows else np.zeros([0]), dtype),
        [len(r) for r in rows])


def chunk_dataset(lines, starts, budget):
    ids, word_starts = packing.chunk_lines(ragged(lines, tf.int32), ragged(starts, tf.bool),
                                           budget)
    return tf.data.Dataset.from_tensor_slices((ids, word_starts))


def oracle_pack(chunks, budget):
    """FULL-SENTENCES packing in plain Python: the specification `pack_lines` must meet."""
    out, buf = [], []
    for chunk in chunks:
        if len(chunk) == 0 or len(buf) + len(chunk) > budget:
            if buf:
                out.append(buf)
            buf = []
        buf = buf + list(chunk)
    return out  # the trailing buffer is only emitted by a final empty marker


# --- chunk_lines --------------------------------------------------------------------------

def test_chunk_lines_example():
    ids = tf.ragged.constant([[1, 2, 3, 4, 5], [], [6, 7]], tf.int32)
    starts = tf.ragged.constant([[True, False, False, True, False], [], [True, False]])
    out_ids, out_starts = packing.chunk_lines(ids, starts, 2)
    assert out_ids.to_list() == [[1, 2], [3, 4], [5], [], [6, 7]]
    # "3" and "5" continue a word cut by a chunk boundary: they start a new word.
    assert out_starts.to_list() == [[True, False], [True, True], [True], [], [True, False]]


def test_chunk_lines_properties():
    rng = np.random.default_rng(0)
    for _ in range(80):
        budget = int(rng.integers(1, 12))
        lines, starts = random_lines(rng, int(rng.integers(1, 12)), max_len=40)
        out_ids, out_starts = packing.chunk_lines(ragged(lines, tf.int32),
                                                  ragged(starts, tf.bool), budget)
        chunks, chunk_starts = out_ids.to_list(), out_starts.to_list()
        # Never over budget; nothing lost, order kept.
        assert all(len(c) <= budget for c in chunks)
        np.testing.assert_array_equal(sum(chunks, []), np.concatenate(lines))
        # Each line becomes ceil(n / budget) chunks, an empty line exactly one empty chunk.
        expected = [max(-(-len(line) // budget), 1) for line in lines]
        assert len(chunks) == sum(expected)
        assert sum(len(c) == 0 for c in chunks) == sum(len(line) == 0 for line in lines)
        # The first piece of every chunk is a word start; other flags are unchanged.
        flat_in = np.concatenate(starts)
        flat_out = np.array(sum(chunk_starts, []), bool)
        firsts = np.cumsum([0] + [len(c) for c in chunks])[:-1][[len(c) > 0 for c in chunks]]
        assert flat_out[firsts].all()
        rest = np.ones(len(flat_in), bool)
        rest[firsts] = False
        np.testing.assert_array_equal(flat_out[rest], flat_in[rest])


# --- pack_lines ---------------------------------------------------------------------------

def test_pack_lines_docstring_example():
    lines = [np.array(x, np.int32) for x in ([1, 2], [3, 4, 5], [], [6], [])]
    starts = [np.ones(len(x), bool) for x in lines]
    packed = list(packing.pack_lines(chunk_dataset(lines, starts, 4), 4).as_numpy_iterator())
    assert [p[0].tolist() for p in packed] == [[1, 2], [3, 4, 5], [6]]


def make_documents(rng, num_docs, max_len):
    """Documents of random lines; returns chunk-ready lines with an empty line after each
    document, and the document index of every piece id."""
    lines, starts, doc_of = [], [], []
    next_id = 0
    for doc in range(num_docs):
        doc_lines, doc_starts = random_lines(rng, int(rng.integers(1, 8)), max_len,
                                             empty_prob=0.0, first_id=next_id)
        n = sum(len(x) for x in doc_lines)
        doc_of += [doc] * n
        next_id += n
        lines += doc_lines + [np.zeros([0], np.int32)]
        starts += doc_starts + [np.zeros([0], bool)]
    return lines, starts, np.array(doc_of)


@pytest.mark.parametrize("budget", [1, 2, 3, 5, 8, 13, 30, 126])
def test_full_sentences_properties(budget):
    rng = np.random.default_rng(budget)
    lines, starts, doc_of = make_documents(rng, num_docs=40, max_len=int(budget * 1.5) + 2)
    chunks = chunk_dataset(lines, starts, budget)
    chunk_list = [c[0].tolist() for c in chunks.as_numpy_iterator()]
    packed = list(packing.pack_lines(chunks, budget, "full_sentences").as_numpy_iterator())
    seqs = [ids.tolist() for ids, _ in packed]
    # Never empty, never over budget.
    assert all(0 < len(s) <= budget for s in seqs)
    # No piece lost, none duplicated, order kept.
    np.testing.assert_array_equal(sum(seqs, []), np.concatenate(lines))
    # No sequence crosses a document boundary.
    for s in seqs:
        assert len(set(doc_of[s])) == 1
    # Exactly greedy FULL-SENTENCES packing of whole chunks.
    assert seqs == oracle_pack(chunk_list, budget)
    # Word starts travel with their pieces.
    np.testing.assert_array_equal(np.concatenate([st for _, st in packed]),
                                  np.concatenate([c[1] for c in chunks.as_numpy_iterator()]))


def test_full_sentences_fills_sequences():
    # Short lines of one long document: all but the last sequence are full when lines of
    # length 1 are packed.
    lines = [np.array([i], np.int32) for i in range(23)] + [np.zeros([0], np.int32)]
    starts = [np.ones(len(x), bool) for x in lines]
    packed = list(packing.pack_lines(chunk_dataset(lines, starts, 5), 5).as_numpy_iterator())
    assert [len(ids) for ids, _ in packed] == [5, 5, 5, 5, 3]


def test_one_line_yields_one_sequence_per_non_empty_line():
    rng = np.random.default_rng(1)
    budget = 10
    lines, starts = random_lines(rng, 60, max_len=budget, empty_prob=0.3)
    packed = list(packing.pack_lines(chunk_dataset(lines, starts, budget), budget,
                                     "one_line").as_numpy_iterator())
    expected = [line.tolist() for line in lines if len(line)]
    assert [ids.tolist() for ids, _ in packed] == expected
    for (_, st), line_starts in zip(packed, [s for s in starts if len(s)]):
        np.testing.assert_array_equal(st, line_starts)


def test_one_line_cuts_long_lines_into_chunks():
    lines = [np.arange(7, dtype=np.int32), np.zeros([0], np.int32)]
    starts = [np.ones(7, bool), np.zeros([0], bool)]
    packed = list(packing.pack_lines(chunk_dataset(lines, starts, 3), 3,
                                     "one_line").as_numpy_iterator())
    assert [ids.tolist() for ids, _ in packed] == [[0, 1, 2], [3, 4, 5], [6]]


def test_unknown_packing_mode_raises():
    lines = [np.array([1], np.int32)]
    with pytest.raises(ValueError, match="packing"):
        packing.pack_lines(chunk_dataset(lines, [np.ones(1, bool)], 4), 4, "bogus")


# --- finalize -----------------------------------------------------------------------------

def test_finalize_example():
    ids = tf.ragged.constant([[10, 11, 12], []], tf.int32)
    starts = tf.ragged.constant([[True, False, True], []])
    out = packing.finalize(ids, starts, 6, CLS, SEP, PAD)
    assert out["token_ids"].numpy().tolist() == [[CLS, 10, 11, 12, SEP, PAD],
                                                 [CLS, SEP, PAD, PAD, PAD, PAD]]
    assert out["padding_mask"].numpy().tolist() == [[True] * 5 + [False],
                                                    [True, True] + [False] * 4]
    assert out["word_ids"].numpy().tolist() == [[-1, 0, 0, 1, -1, -1], [-1] * 6]
    assert out["segment_ids"].numpy().tolist() == [[0] * 6] * 2
    assert out["token_ids"].dtype == tf.int32 and out["segment_ids"].dtype == tf.int32
    assert out["word_ids"].dtype == tf.int32 and out["padding_mask"].dtype == tf.int32


def test_finalize_properties():
    rng = np.random.default_rng(2)
    for _ in range(40):
        length = int(rng.integers(3, 40))
        batch = int(rng.integers(1, 9))
        rows = [rng.integers(5, 100, int(rng.integers(0, length - 1))).astype(np.int32)
                for _ in range(batch)]
        starts = []
        for r in rows:
            s = rng.random(len(r)) < 0.5
            if len(r):
                s[0] = True
            starts.append(s)
        out = {k: v.numpy() for k, v in packing.finalize(
            ragged(rows, tf.int32), ragged(starts, tf.bool), length, CLS, SEP, PAD).items()}
        for key in out:
            assert out[key].shape == (batch, length)
        for b, (r, s) in enumerate(zip(rows, starts)):
            n = len(r)
            expected = np.full(length, PAD)
            expected[0], expected[1:n + 1], expected[n + 1] = CLS, r, SEP
            np.testing.assert_array_equal(out["token_ids"][b], expected)
            np.testing.assert_array_equal(out["padding_mask"][b], np.arange(length) < n + 2)
            assert not out["segment_ids"][b].any()
            word_ids = np.full(length, -1)
            word_ids[1:n + 1] = np.cumsum(s) - 1
            np.testing.assert_array_equal(out["word_ids"][b], word_ids)


def test_finalize_padding_mask_ignores_pad_id_inside_content():
    # A vocabulary may reuse the pad id (here 7) as an ordinary token.
    ids = tf.ragged.constant([[7, 5, 7]], tf.int32)
    starts = tf.ragged.constant([[True, True, True]])
    out = packing.finalize(ids, starts, 7, CLS, SEP, pad_token_id=7)
    assert out["token_ids"].numpy().tolist() == [[CLS, 7, 5, 7, SEP, 7, 7]]
    assert out["padding_mask"].numpy().tolist() == [[True] * 5 + [False] * 2]
    assert out["word_ids"].numpy().tolist() == [[-1, 0, 1, 2, -1, -1, -1]]


def test_finalize_in_graph_with_unknown_batch():
    fn = tf.function(lambda ids, starts: packing.finalize(ids, starts, 8, CLS, SEP, PAD))
    out = fn(tf.ragged.constant([[9, 9]], tf.int32), tf.ragged.constant([[True, False]]))
    assert out["token_ids"].numpy().tolist() == [[CLS, 9, 9, SEP, 0, 0, 0, 0]]
    assert out["word_ids"].numpy().tolist() == [[-1, 0, 0, -1, -1, -1, -1, -1]]


# --- build_sequences ----------------------------------------------------------------------

SPECIALS = {"cls_token_id": CLS, "sep_token_id": SEP, "pad_token_id": PAD}


def as_lists(out):
    return {k: v.to_list() if isinstance(v, tf.RaggedTensor) else v.numpy().tolist()
            for k, v in out.items()}


def test_build_sequences_pair_exact():
    # L = 8: 5 pieces for A and B. Row 0: (4, 3) -> (3, 2), longest first with B cut on the
    # tie; row 1 fits; row 2: B is empty.
    first = tf.ragged.constant([[10, 11, 12, 13], [20], [30, 31]], tf.int32)
    second = tf.ragged.constant([[40, 41, 42], [50, 51], []], tf.int32)
    out = as_lists(packing.build_sequences(first, second, max_sequence_length=8, **SPECIALS))
    assert out["token_ids"] == [[CLS, 10, 11, 12, SEP, 40, 41, SEP],
                                [CLS, 20, SEP, 50, 51, SEP, PAD, PAD],
                                [CLS, 30, 31, SEP, SEP, PAD, PAD, PAD]]
    assert out["segment_ids"] == [[0, 0, 0, 0, 0, 1, 1, 1],
                                  [0, 0, 0, 1, 1, 1, 0, 0],
                                  [0, 0, 0, 0, 1, 0, 0, 0]]
    assert out["padding_mask"] == [[1] * 8, [1] * 6 + [0] * 2, [1] * 5 + [0] * 3]


def test_build_sequences_pair_word_ids_and_extras():
    # Words of B continue after those of A; an extra value travels with its piece.
    first = {"token_ids": tf.ragged.constant([[10, 11, 12]], tf.int32),
             "word_starts": tf.ragged.constant([[True, False, True]]),
             "labels": tf.ragged.constant([[7, 8, 9]], tf.int32)}
    second = {"token_ids": tf.ragged.constant([[20, 21]], tf.int32),
              "word_starts": tf.ragged.constant([[True, False]]),
              "labels": tf.ragged.constant([[5, 6]], tf.int32)}
    out = as_lists(packing.build_sequences(first, second, fill_values={"labels": -1},
                                           padding=None, **SPECIALS))
    assert out["token_ids"] == [[CLS, 10, 11, 12, SEP, 20, 21, SEP]]
    assert out["word_ids"] == [[-1, 0, 0, 1, -1, 2, 2, -1]]
    assert out["labels"] == [[-1, 7, 8, 9, -1, 5, 6, -1]]
    assert out["segment_ids"] == [[0, 0, 0, 0, 0, 1, 1, 1]]
    assert "word_starts" not in out


def bert_truncate_pair(a, b, budget):
    """BERT's `_truncate_seq_pair`, verbatim in spirit: pop from the longer, B on ties."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()
    return a, b


def test_longest_first_matches_bert_pair_truncation():
    rng = np.random.default_rng(3)
    for _ in range(30):
        budget = int(rng.integers(0, 12))
        lengths = rng.integers(0, 15, size=(int(rng.integers(1, 8)), 2))
        first = [list(range(100, 100 + n)) for n in lengths[:, 0]]
        second = [list(range(200, 200 + n)) for n in lengths[:, 1]]
        out = packing.build_sequences(ragged(first, tf.int32), ragged(second, tf.int32),
                                      max_sequence_length=budget + 3, padding=None,
                                      **SPECIALS)["token_ids"].to_list()
        for row, a, b in zip(out, first, second):
            a, b = bert_truncate_pair(a, b, budget)
            assert row == [CLS] + a + [SEP] + b + [SEP]


def test_build_sequences_single_head_tail_and_padding_modes():
    ids = tf.ragged.constant([list(range(10, 22)), [30]], tf.int32)
    # budget 8: the first 2 (ceil(8 / 4)) and the last 6 pieces.
    out = as_lists(packing.build_sequences(ids, max_sequence_length=10, truncation="head_tail",
                                           **SPECIALS))
    assert out["token_ids"] == [[CLS, 10, 11, 16, 17, 18, 19, 20, 21, SEP],
                                [CLS, 30, SEP] + [PAD] * 7]
    longest = as_lists(packing.build_sequences(ids, max_sequence_length=5, **SPECIALS))
    assert longest["token_ids"] == [[CLS, 10, 11, 12, SEP], [CLS, 30, SEP, PAD, PAD]]
    fixed = as_lists(packing.build_sequences(ids[1:], max_sequence_length=5,
                                             padding="max_length", **SPECIALS))
    assert fixed["token_ids"] == [[CLS, 30, SEP, PAD, PAD]]
    untruncated = packing.build_sequences(ids, **SPECIALS)["token_ids"]
    assert untruncated.shape == (2, 14)
    # An empty batch still has the specials' width (the pooler reads position 0).
    empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    assert packing.build_sequences(empty, **SPECIALS)["token_ids"].shape == (0, 2)


def test_head_tail_cut_starts_a_word():
    # "a ##b ##c ##d ##e" cut to head 1 + tail 2: the tail's "##d" starts a new word, so a
    # whole-word masker never joins it to "a".
    segment = {"token_ids": tf.ragged.constant([[1, 2, 3, 4, 5]], tf.int32),
               "word_starts": tf.ragged.constant([[True, False, False, False, False]])}
    out = as_lists(packing.build_sequences(segment, max_sequence_length=5, padding=None,
                                           truncation="head_tail", **SPECIALS))
    assert out["token_ids"] == [[CLS, 1, 4, 5, SEP]]
    assert out["word_ids"] == [[-1, 0, 1, 1, -1]]


def test_build_sequences_argument_errors():
    ids = tf.ragged.constant([[1]], tf.int32)
    with pytest.raises(ValueError, match="padding"):
        packing.build_sequences(ids, padding="max_length", **SPECIALS)
    with pytest.raises(ValueError, match="pad_token_id"):
        packing.build_sequences(ids, cls_token_id=CLS, sep_token_id=SEP)
    with pytest.raises(ValueError, match="truncation"):
        packing.build_sequences(ids, max_sequence_length=4, truncation="tail", **SPECIALS)
    with pytest.raises(ValueError, match="special tokens"):
        packing.build_sequences(ids, ids, max_sequence_length=2, **SPECIALS)
    with pytest.raises(ValueError, match="same keys"):
        packing.build_sequences({"token_ids": ids, "labels": ids}, ids, **SPECIALS)
