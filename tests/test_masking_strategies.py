"""Entity, keyword and PMI masking: the n-gram matching they share, their selection statistics
on packed batches, the first passes that list what they match (checked against numbers worked
out by hand), CoNLL corpora read as text, and one real pipeline batch per strategy.

The vocabulary is `helpers.TINY_VOCAB` plus a few hand-written words, so every text here is
made of known pieces ("unaffable" = un ##aff ##able, "dogs" = dog ##s).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from helpers import TINY_VOCAB
from tfmask.config import DataConfig, MaskingConfig
from tfmask.text import corpus_formats, corpus_statistics as cs, masking, ngrams, packing
from tfmask.text.pretraining_data import pretraining_dataset
from tfmask.text.tokenization import WordPieceTokenizer

EXTRA = ["new", "york", "city", "council", "john", "smith", "paris", "visited", "in", "and",
         "river", "old", "bridge", "report", "market", "train", "station", "quiet", "morning",
         "rare", "word", "x", "y", "z"]
VOCAB = list(TINY_VOCAB) + EXTRA
L = 64
FILLER = ["the", "cat", "sat", "on", "mat", ".", ",", "a", "big", "dog", "river", "old",
          "bridge", "report", "market", "train", "station", "quiet", "morning", "visited",
          "in", "and", "unaffable", "dogs", "world", "hello"]
ENTITIES = ["New York City", "John Smith", "Paris"]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


def make_texts(num, seed=0, entity_share=0.12):
    """Seeded sentences of 8-30 words, about `entity_share` of word slots an entity."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(num):
        words = []
        for _ in range(int(rng.integers(8, 30))):
            pool = ENTITIES if rng.random() < entity_share else FILLER
            words.append(str(pool[int(rng.integers(len(pool)))]))
        texts.append(" ".join(words))
    return texts


def make_batch(tokenizer, texts):
    ids, starts = tokenizer.pieces_and_word_starts(tf.constant(texts))
    return packing.finalize(ids, starts, L, tokenizer.cls_token_id, tokenizer.sep_token_id,
                            tokenizer.pad_token_id)


@pytest.fixture(scope="module")
def batch(tokenizer):
    return make_batch(tokenizer, make_texts(600))


def mask(tokenizer, features, strategy, contents, seed=(1, 2), **fields):
    """Annotates `features` with the tables of `contents` and masks them; numpy out."""
    config = MaskingConfig(strategy=strategy, max_predictions=24, **fields)
    tables = cs.MaskingTables(contents, tokenizer, config)
    out = masking.apply_masking(tables.annotate(features), tf.constant(seed, tf.int64), config,
                                vocabulary_size=tokenizer.vocabulary_size,
                                mask_token_id=tokenizer.mask_token_id,
                                special_ids=tokenizer.special_ids)
    return {k: v.numpy() for k, v in out.items()}


def selected(out):
    sel = np.zeros(out["token_ids"].shape, bool)
    rows, slots = np.nonzero(out["mask_weights"])
    sel[rows, out["mask_positions"][rows, slots]] = True
    return sel


def selectable(features, tokenizer):
    ids = features["token_ids"].numpy()
    return (features["word_ids"].numpy() >= 0) & ~np.isin(ids, tokenizer.special_ids)


def check_units(sel, units, can):
    """Every unit (pieces sharing a group id) is selected whole or not at all."""
    for b in range(sel.shape[0]):
        for g in np.unique(units[b][sel[b]]):
            np.testing.assert_array_equal(sel[b][units[b] == g], can[b][units[b] == g])


ENTITY_FILE = "".join(f"{e}\t1\n" for e in ENTITIES)


# ----------------------------------------------------------------------------------------------
# The shared primitive: n-gram keys and units
# ----------------------------------------------------------------------------------------------
def test_match_units_longest_first_without_overlap(tokenizer):
    table_texts = ["new york", "new york city", "city council", "john smith", "dogs"]
    keys, words = ngrams.text_keys(tokenizer, table_texts)
    assert words.tolist() == [2, 3, 2, 2, 1]
    table = ngrams.lookup_table(keys, np.ones(len(keys)), 0.0)
    f = make_batch(tokenizer, ["new york city council , john smith and dogs", "new york ."])
    groups, in_unit = ngrams.match_units(f["token_ids"], f["word_ids"], table, 3)
    # [CLS] new york city council , john smith and dog ##s [SEP]: "new york city" wins over
    # "new york" (longer) and "city council" (overlaps it, later); both pieces of "dogs".
    assert groups.numpy()[0, :13].tolist() == [-1, 0, 0, 0, 3, 4, 5, 5, 7, 8, 8, -1, -1]
    assert in_unit.numpy()[0, :12].tolist() == [False, True, True, True, False, False,
                                                 True, True, False, True, True, False]
    assert groups.numpy()[1, :5].tolist() == [-1, 0, 0, 2, -1]


def test_keys_agree_between_lists_and_batches(tokenizer):
    f = make_batch(tokenizer, ["the cat sat on unaffable dogs"])
    keys, valid = ngrams.ngram_keys(f["token_ids"], f["word_ids"], 3)
    listed, _ = ngrams.text_keys(tokenizer, ["the cat sat", "unaffable dogs", "dogs"])
    assert keys.numpy()[0, 0, 2] == listed[0]  # 3 words from word 0
    assert keys.numpy()[0, 4, 1] == listed[1]  # 2 words from word 4 (4 pieces)
    assert keys.numpy()[0, 5, 0] == listed[2]
    assert valid.numpy()[0, 5].tolist() == [True, False, False]  # nothing after "dogs"
    # Keys of distinct n-grams differ (no structured collisions across lengths).
    flat = keys.numpy()[0][valid.numpy()[0]]
    assert len(np.unique(flat)) == len(flat)


def test_empty_lists_match_nothing(tokenizer):
    """A first pass that found nothing (no capitalised run, no frequent n-gram) leaves whole
    words: a table cannot be empty, so it holds a key no n-gram has."""
    f = make_batch(tokenizer, ["new york city", "the cat"])
    tables = cs.MaskingTables({cs.ENTITIES: "", cs.PMI_NGRAMS: ""}, tokenizer, MaskingConfig())
    out = tables.annotate(f)
    for key in ("entity_group_ids", "pmi_group_ids"):
        np.testing.assert_array_equal(out[key].numpy(), f["word_ids"].numpy())
    assert not out["entity_priority"].numpy().any()


# ----------------------------------------------------------------------------------------------
# Entity masking
# ----------------------------------------------------------------------------------------------
def test_entity_masking_statistics(tokenizer, batch):
    out = mask(tokenizer, batch, "entity", {cs.ENTITIES: ENTITY_FILE})
    sel, can = selected(out), selectable(batch, tokenizer)
    tables = cs.MaskingTables({cs.ENTITIES: ENTITY_FILE}, tokenizer, MaskingConfig())
    annotated = tables.annotate(batch)
    units = annotated["entity_group_ids"].numpy()
    in_entity = annotated["entity_priority"].numpy() > 0
    assert not sel[~can].any()  # never [CLS], [SEP], padding
    assert abs(sel.sum() / can.sum() - 0.15) < 0.015  # the rate, in pieces
    check_units(sel, units, can)
    # Whole entities are selected together, and far more often than their share of pieces.
    share, chosen = in_entity[can].mean(), in_entity[sel].mean()
    assert 0.15 < share < 0.45 and chosen > share + 0.3
    # Every multi-word entity chosen is there whole (3 pieces for "new york city").
    assert (sel & in_entity).sum() > 500


def test_entity_priority_zero_is_uniform_over_units(tokenizer, batch):
    out = mask(tokenizer, batch, "entity", {cs.ENTITIES: ENTITY_FILE}, entity_priority=0.0)
    tables = cs.MaskingTables({cs.ENTITIES: ENTITY_FILE}, tokenizer, MaskingConfig())
    in_entity = tables.annotate(batch)["entity_priority"].numpy() > 0
    sel, can = selected(out), selectable(batch, tokenizer)
    # Units are drawn uniformly: an entity piece is chosen no more often than any piece
    # (multi-piece units are a little less likely to fit at the budget's edge).
    assert in_entity[sel].mean() < in_entity[can].mean() + 0.03


# ----------------------------------------------------------------------------------------------
# Keyword masking
# ----------------------------------------------------------------------------------------------
def tfidf_of_words(features, tokenizer, contents):
    """[B, L] TF-IDF of each piece's word, computed in NumPy from the words' texts."""
    rows = [r.split("\t") for r in contents.splitlines()[1:]]
    documents = int(contents.splitlines()[0].split("\t")[1])
    idf = {w: math.log((1 + documents) / (1 + int(d))) for w, d in rows}
    ids, word_ids = features["token_ids"].numpy(), features["word_ids"].numpy()
    out = np.zeros(ids.shape)
    for b in range(ids.shape[0]):
        words = {}
        for w in range(word_ids[b].max() + 1):
            words[w] = "".join(VOCAB[i].removeprefix("##") for i in ids[b][word_ids[b] == w])
        counts = {t: list(words.values()).count(t) for t in set(words.values())}
        for p in np.nonzero(word_ids[b] >= 0)[0]:
            text = words[word_ids[b][p]]
            out[b, p] = counts[text] * idf.get(text, math.log(1 + documents))
    return out


def test_keyword_masking_prefers_high_tfidf(tokenizer, batch):
    # Document frequencies over 100 documents: the filler words are common, entity words rare.
    common = {w: 90 for w in FILLER}
    common.update({"new": 5, "york": 5, "city": 5, "john": 3, "smith": 3, "paris": 8})
    contents = "#documents\t100\n" + "".join(f"{w}\t{d}\n" for w, d in common.items())
    tfidf = tfidf_of_words(batch, tokenizer, contents)
    can = selectable(batch, tokenizer)
    keyword = selected(mask(tokenizer, batch, "keyword",
                            {cs.DOCUMENT_FREQUENCIES: contents}))
    uniform = selected(mask(tokenizer, batch, "whole_word", {}))
    assert not keyword[~can].any()
    assert abs(keyword.sum() / can.sum() - 0.15) < 0.015
    check_units(keyword, batch["word_ids"].numpy(), can)  # whole words
    # Skewed towards high TF-IDF (mean percentile rank within the sequence), still random.
    rank = np.zeros(tfidf.shape)
    for b in range(len(rank)):
        order = np.argsort(np.argsort(tfidf[b][can[b]], kind="stable"), kind="stable")
        rank[b][can[b]] = order / max(1, can[b].sum() - 1)
    assert rank[keyword].mean() > rank[uniform].mean() + 0.2
    assert 0.4 < rank[uniform].mean() < 0.6
    low = tfidf[can] < np.median(tfidf[can])
    assert 0 < keyword[can][low].sum()  # low-TF-IDF words still get picked sometimes


def test_keyword_priority_matches_numpy(tokenizer):
    f = make_batch(tokenizer, ["paris paris the cat rare , the"])
    contents = "#documents\t9\nparis\t1\nthe\t9\ncat\t4\n,\t2\n"
    tables = cs.MaskingTables({cs.DOCUMENT_FREQUENCIES: contents}, tokenizer,
                              MaskingConfig(strategy="keyword", keyword_strength=2.0))
    priority = tables.annotate(f)["keyword_priority"].numpy()[0]
    expected = [2 * math.log(max(tf * math.log(10 / (1 + df)), 1e-6)) for tf, df in
                [(2, 1), (2, 1), (2, 9), (1, 4), (1, 0), (1, 2), (2, 9)]]
    np.testing.assert_allclose(priority[1:8], expected, rtol=1e-5)
    assert priority[0] == 0 and priority[8] == 0  # [CLS], [SEP]


# ----------------------------------------------------------------------------------------------
# PMI masking
# ----------------------------------------------------------------------------------------------
def test_pmi_masking_keeps_ngrams_whole(tokenizer, batch):
    contents = "new york city\t40\t9.1\njohn smith\t30\t8.0\nunaffable dogs\t3\t7.0\n"
    out = mask(tokenizer, batch, "pmi", {cs.PMI_NGRAMS: contents})
    sel, can = selected(out), selectable(batch, tokenizer)
    tables = cs.MaskingTables({cs.PMI_NGRAMS: contents}, tokenizer, MaskingConfig())
    units = tables.annotate(batch)["pmi_group_ids"].numpy()
    assert not sel[~can].any()
    assert abs(sel.sum() / can.sum() - 0.15) < 0.015
    check_units(sel, units, can)
    # Multi-word n-grams are predicted whole, more than 100 times in these 600 sequences.
    word_ids = batch["word_ids"].numpy()
    multi = sum(len(np.unique(word_ids[b][units[b] == g])) >= 2 for b in range(len(units))
                for g in np.unique(units[b][sel[b]]))
    assert multi > 100


@pytest.mark.parametrize("strategy,contents", [
    ("entity", {cs.ENTITIES: ENTITY_FILE}),
    ("keyword", {cs.DOCUMENT_FREQUENCIES: "#documents\t4\nthe\t4\ncat\t1\n"}),
    ("pmi", {cs.PMI_NGRAMS: "john smith\t5\t3.0\n"}),
])
def test_seeded(tokenizer, batch, strategy, contents):
    small = {k: v[:100] for k, v in batch.items()}
    a = mask(tokenizer, small, strategy, contents, seed=(5, 7))
    b = mask(tokenizer, small, strategy, contents, seed=(5, 7))
    c = mask(tokenizer, small, strategy, contents, seed=(5, 8))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["mask_positions"], c["mask_positions"])


@pytest.mark.parametrize("strategy,contents,units", [
    ("entity", {cs.ENTITIES: ENTITY_FILE}, "entity_group_ids"),
    ("keyword", {cs.DOCUMENT_FREQUENCIES: "#documents\t9\nthe\t9\ncat\t1\n"}, None),
    ("pmi", {cs.PMI_NGRAMS: "new york city\t5\t3.0\njohn smith\t5\t3.0\n"},
     "pmi_group_ids"),
])
def test_cap_and_mlm_contract(tokenizer, batch, strategy, contents, units):
    """At a rate the 6 slots cannot hold: never more than 6 pieces, still whole units, and the
    slots laid out as `mask_tokens` promises (used slots first, positions ascending)."""
    small = {k: v[:200] for k, v in batch.items()}
    config = MaskingConfig(strategy=strategy, selection_rate=0.5, max_predictions=6)
    tables = cs.MaskingTables(contents, tokenizer, config)
    out = masking.apply_masking(tables.annotate(small), tf.constant([3, 4], tf.int64), config,
                                vocabulary_size=tokenizer.vocabulary_size,
                                mask_token_id=tokenizer.mask_token_id,
                                special_ids=tokenizer.special_ids)
    out = {k: v.numpy() for k, v in out.items()}
    sel, can = selected(out), selectable(small, tokenizer)
    assert sel.sum(axis=1).max() <= 6 and sel.sum(axis=1).max() >= 5
    groups = tables.annotate(small)[units].numpy() if units else small["word_ids"].numpy()
    check_units(sel, groups, can)
    used = out["mask_weights"] > 0
    assert np.all(np.diff(used.astype(int), axis=1) <= 0)
    for b in range(len(used)):
        assert np.all(np.diff(out["mask_positions"][b, used[b]]) > 0)
    np.testing.assert_array_equal(
        np.take_along_axis(small["token_ids"].numpy(), out["mask_positions"], 1)[used],
        out["mask_ids"][used])


def test_strategy_without_its_tables_says_so(tokenizer, batch):
    with pytest.raises(ValueError, match="entity"):
        masking.apply_masking(batch, tf.constant([1, 2], tf.int64),
                              MaskingConfig(strategy="entity"), vocabulary_size=len(VOCAB),
                              mask_token_id=tokenizer.mask_token_id,
                              special_ids=tokenizer.special_ids)


# ----------------------------------------------------------------------------------------------
# First passes, checked against hand-computed numbers
# ----------------------------------------------------------------------------------------------
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_document_frequencies_by_hand(tokenizer, tmp_path):
    blocks = write(tmp_path / "blocks.txt", "a cat sat\nthe cat\n\nthe dog\n \nthe cat , the\n")
    one_line = write(tmp_path / "lines.txt", "cat cat\nmat\nthe mat\n")
    data = DataConfig(corpus=[blocks, one_line], eval_holdout=0.0)
    text = cs.prepare(data, MaskingConfig(strategy="keyword"), tokenizer)[cs.DOCUMENT_FREQUENCIES]
    # Documents: {a cat sat the cat}, {the dog}, {the cat , the} (a blank line with a space
    # ends one too), then one per line of the file without blank lines: {cat cat}, {mat},
    # {the mat}.
    assert text.splitlines()[0] == "#documents\t6"
    df = dict(line.split("\t") for line in text.splitlines()[1:])
    assert df == {"the": "4", "cat": "3", "mat": "2", "a": "1", "sat": "1", "dog": "1", ",": "1"}


def test_pmi_by_hand(tokenizer, tmp_path):
    # 19 words; "new" 4 times, "york" 3, "city" 2, "new york" 3, "york city" 2.
    text = "new york city x\nnew york city y\nnew york z\nnew x y z\nx y z x\n"
    path = write(tmp_path / "c.txt", text)
    data = DataConfig(corpus=[path], eval_holdout=0.0)
    config = MaskingConfig(strategy="pmi", pmi_min_count=2, pmi_max_ngrams=50)
    rows = [r.split("\t") for r in cs.prepare(data, config, tokenizer)[cs.PMI_NGRAMS]
            .splitlines()]
    pmi = {g: (int(c), float(p)) for g, c, p in rows}
    n = len(text.split())
    assert n == 19
    assert pmi["new york"] == (3, pytest.approx(math.log((3 / n) / ((4 / n) * (3 / n))), abs=1e-4))
    # "new york city": the smallest of its three segmentations.
    segmentations = [(3 / n) * (2 / n), (4 / n) * (2 / n), (4 / n) * (3 / n) * (2 / n)]
    expected = min(math.log((2 / n) / s) for s in segmentations)
    assert pmi["new york city"] == (2, pytest.approx(expected, abs=1e-4))
    assert "city x" not in pmi  # seen once
    assert "york z" not in pmi
    assert list(pmi) == sorted(pmi, key=lambda g: -pmi[g][1])  # highest first
    # "z x" occurs once in a line and once across a line end: n-grams stop at line ends.
    assert "z x" not in pmi and pmi["x y z"][0] == 2


CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
Smith NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

New NNP B-NP B-LOC
York NNP I-NP I-LOC
City NNP I-NP I-LOC
. . O O
-DOCSTART- -X- -X- O

Paris NNP B-NP B-LOC
"""


def test_conll_corpus_reads_as_sentences_and_gives_entities(tokenizer, tmp_path):
    path = write(tmp_path / "train.txt", CONLL)
    assert corpus_formats.is_conll_file(path)
    assert not corpus_formats.is_conll_file(write(tmp_path / "t.txt", "John Smith visited\n"))
    lines = [s.decode() for s in corpus_formats.conll_file_lines(tf.constant(path))
             .as_numpy_iterator()]
    assert lines == ["", "John Smith visited Paris .", "New York City .", "", "Paris"]
    data = DataConfig(corpus=[path], eval_holdout=0.0)
    entities, source = cs.entity_list(data, MaskingConfig(strategy="entity"))
    assert "NER tags" in source
    assert entities == [("Paris", 2), ("John Smith", 1), ("New York City", 1)]
    with pytest.raises(ValueError, match="mixes CoNLL"):
        corpus_formats.is_conll_corpus([path, str(tmp_path / "t.txt")])


def test_capitalised_rule():
    lines = [["John", "Smith", "met", "Mary", "Ann", "Lee", "in", "New", "York", "."],
             ["The", "Board", "met", "Mary", "Ann", "Lee", ".", "Then", "it", "left"],
             ["I", "saw", "Mary", "Ann", "Lee", "and", "the", "U", ".", "S", "."],
             ['"', "Paris", "is", "far", '"', ",", "said", "AP", "-", "Police", "said"],
             ["they", "told", "US", "officials", "and", "us"]]
    counts = cs.capitalised_runs(lines)
    # Runs that touch a sentence start (John Smith, The Board, Then, Paris after an opening
    # quote, Police after "-") are left out; so are "I", the one-letter "U", "S", and "US"
    # (as often "us" in lower case).
    assert counts == {"Mary Ann Lee": 3, "New York": 1, "AP": 1}


def test_gazetteer_wins_and_statistics_are_reused(tokenizer, tmp_path):
    gazetteer = write(tmp_path / "g.txt", "# places\nParis\n\nNew York City\nParis\n")
    corpus = write(tmp_path / "c.txt", "John Smith visited Paris .\nthe John Smith cat\n")
    data = DataConfig(corpus=[corpus], eval_holdout=0.0)
    config = MaskingConfig(strategy="entity:0.5,keyword:0.5", gazetteer=gazetteer)
    run = tmp_path / "run"
    contents = cs.prepare(data, config, tokenizer, str(run))
    assert contents[cs.ENTITIES] == "Paris\t1\nNew York City\t1\n"
    assert sorted(contents) == [cs.DOCUMENT_FREQUENCIES, cs.ENTITIES]
    (run / "masking" / cs.ENTITIES).write_text("John Smith\t7\n")  # a resumed run reads it
    assert cs.prepare(data, config, tokenizer, str(run))[cs.ENTITIES] == "John Smith\t7\n"


# ----------------------------------------------------------------------------------------------
# The real pipeline
# ----------------------------------------------------------------------------------------------
def test_pipeline_batch_with_each_strategy(tokenizer, tmp_path):
    """One batch of `pretraining_dataset` masked by a mixture of the three strategies (one
    pipeline start instead of three: each costs seconds), from a run's first passes."""
    docs = ["\n".join(make_texts(6, seed=i, entity_share=0.3)) for i in range(12)]
    corpus = write(tmp_path / "c.txt", "\n\n".join(docs) + "\n")
    data = DataConfig(corpus=[corpus], max_sequence_length=L, eval_holdout=0.0)
    config = MaskingConfig(strategy="entity:1,keyword:1,pmi:1", max_predictions=16,
                           pmi_min_count=3)
    contents = cs.prepare(data, config, tokenizer, str(tmp_path / "run"))
    assert sorted(p.name for p in (tmp_path / "run" / "masking").iterdir()) == sorted(contents)
    tables = cs.masking_tables(data, config, tokenizer, contents)
    # Each first pass found something to match on this corpus (entities: capitalised runs).
    assert min(int(t.size()) for t in (tables.entities, tables.idf, tables.pmi)) > 3
    ds = pretraining_dataset(tokenizer, data, config, batch_size=16, seed=3,
                             masking_tables=tables)
    x, y, weights = next(iter(ds))
    ids, positions = x["token_ids"].numpy(), x["mask_positions"].numpy()
    assert ids.shape == (16, L) and positions.shape == y.shape == weights.shape == (16, 16)
    used = weights.numpy() > 0
    assert used.sum(axis=1).min() >= 1
    assert not np.isin(y.numpy()[used], tokenizer.special_ids).any()
    assert (positions[used] > 0).all() and (ids[:, 0] == tokenizer.cls_token_id).all()
