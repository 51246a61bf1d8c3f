"""Property-based tests (hypothesis): random and malformed files fed to every reader end in
the documented `ReaderError` (or a well-formed result), never in another exception; random
Unicode, control characters, invalid UTF-8, very long and empty strings fed to the exported
`serve_text` signatures give well-formed outputs."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfmask import runs
from tfmask.text import readers, text_files
from tfmask.text.labels import TAG
from tfmask.text.pretraining_data import good_lines
from tfmask.text.readers import ReaderError
from tfmask.text.tokenization import load_vocabulary

FEW = settings(max_examples=30, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])

# --- files ------------------------------------------------------------------------------------
# Pieces that files of each format are made of, so random files are often nearly right (and
# reach deep into the readers), mixed with arbitrary bytes and text.
_CONLL_PIECES = ["EU", "rejects", "Peter", "-DOCSTART-", "NNP", "B-PER", "I-PER", "E-LOC",
                 "S-ORG", "O", "B-", "I-X", "0", "\u00e9", "\u00a0", " ", " ", "\t", "\n",
                 "\n", "\r\n", "\ufeff"]
_TABLE_PIECES = ["sentence", "label", "text", "good film", "dull", "0", "1", "pos", "neg",
                 '"', '"a, b"', ",", ",", "\t", "\t", ";", "|", "\n", "\n", "\r\n", " ",
                 "\u00e9", "-1", "2"]


def _made_of(pieces):
    return st.lists(st.sampled_from(pieces), max_size=40).map("".join)


def _file_content(pieces):
    """Bytes of a file: made of format pieces, any text, or any bytes, sometimes encoded
    otherwise than UTF-8 or with a bad byte spliced in."""
    text = st.one_of(_made_of(pieces), st.text(max_size=60))
    encoded = st.one_of(
        text.map(lambda t: t.encode("utf-8")),
        text.map(lambda t: t.encode("utf-16")),
        st.builds(lambda t, b: t.encode("utf-8") + b, text, st.binary(min_size=1, max_size=4)),
        st.binary(max_size=80))
    return encoded


_DIR = []  # the folder random files go to (hypothesis runs many examples per test call)


@pytest.fixture(scope="module", autouse=True)
def _files_folder(tmp_path_factory):
    _DIR[:] = [str(tmp_path_factory.mktemp("random_files"))]


def _write(content: bytes, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix, dir=_DIR[0])
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return path


@FEW
@given(_file_content(_CONLL_PIECES), st.sampled_from(["auto", "IOB1", "IOB2", "IOBES"]),
       st.sampled_from([-1, 1, 2]))
def test_read_conll_gives_iob2_sentences_or_a_reader_error(content, scheme, tag_column):
    path = _write(content, ".txt")
    try:
        sentences = readers.read_conll(path, tag_column=tag_column, scheme=scheme)
    except ReaderError as e:
        assert str(e).startswith(path + ":") and "\n" not in str(e)
        return
    assert sentences
    for s in sentences:
        assert len(s.words) == len(s.tags) > 0 and all(w.strip() for w in s.words)
        assert all(TAG.fullmatch(t) and t[0] in "OBI" for t in s.tags)
        assert all(t == "O" or not t.startswith("I-") or i > 0 for i, t in enumerate(s.tags))


@FEW
@given(_file_content(_TABLE_PIECES), st.sampled_from([".tsv", ".csv", ".txt"]),
       st.sampled_from([None, "sentence", 0, -1]), st.sampled_from([None, "label", 1, 5]))
def test_read_classification_gives_rows_or_a_reader_error(content, suffix, text_column,
                                                          label_column):
    path = _write(content, suffix)
    try:
        texts, labels, names = readers.read_classification(path, text_column, label_column)
    except ReaderError as e:
        assert str(e).startswith(path + ":") and "\n" not in str(e)
        return
    assert len(texts) == len(labels) > 0 and all(t.strip() for t in texts)
    assert all(0 <= i < len(names) for i in labels)


@FEW
@given(_file_content(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##a", "a", "\n", "\n",
                      "\r\n", " ", "\u00e9"]))
def test_vocabulary_and_label_files_read_or_name_the_file(content):
    path = _write(content, ".txt")
    for read in (load_vocabulary, readers.load_labels, text_files.read_lines):
        try:
            items = read(path)
        except ReaderError as e:
            assert str(e).startswith(path + ":") and "\n" not in str(e)
            continue
        assert isinstance(items, list) and all(isinstance(i, str) for i in items)
        if read is load_vocabulary:  # what the tokenizer accepts
            assert len(set(items)) == len(items)


@FEW
@given(st.lists(st.one_of(st.text(max_size=30).map(lambda t: t.encode("utf-8")),
                          st.binary(max_size=12)), max_size=12),
       st.booleans())
def test_the_corpus_scan_and_the_pipeline_agree_on_bad_lines(lines, skip):
    """The plain-Python scan raises `ReaderError` or counts exactly the lines the tf.data
    filter (`--skip-bad-lines`) leaves out."""
    content = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    path = _write(content, ".txt")
    try:
        report = text_files.scan_corpus([path], skip_bad_lines=skip)
    except ReaderError as e:
        assert str(e).startswith((path + ":", "--corpus")) and "\n" not in str(e)
        return
    read = tf.data.TextLineDataset(path)
    dropped = sum(1 for _ in read) - sum(1 for _ in good_lines(read))
    assert report.skipped_not_utf8 + report.skipped_long == dropped
    assert skip or dropped == 0


# --- serve_text -------------------------------------------------------------------------------
_TEXT = st.one_of(
    st.just(""), st.text(max_size=40),  # any Unicode, control characters included
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Mn"]), max_size=10),
    st.builds(lambda t, n: t * n, st.text(min_size=1, max_size=6), st.integers(500, 20000)),
    st.lists(st.sampled_from(["Peter", "[MASK]", "visited", "Paris", ".", "\u00e9t\u00e9",
                              "\U0001f600", "\u6771\u4eac", " ", "\t"]),
             max_size=30).map(" ".join))
_INPUT = st.one_of(_TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=30))


@pytest.fixture(scope="module")
def served(exported):
    """kind -> (serve_text of the reloaded SavedModel, label names)."""
    out = {}
    for kind in ("sentiment", "ner", "fill_mask"):
        model = tf.saved_model.load(exported[kind]["text"]["path"])
        labels = (runs.load_labels(exported["runs"][kind]) if kind != "fill_mask" else None)
        out[kind] = (model, model.signatures["serve_text"], labels)
    return out


def _call(served, kind, texts):
    _, serve_text, labels = served[kind]
    outputs = serve_text(text=tf.constant(texts, tf.string))
    return {k: v.numpy() for k, v in outputs.items()}, labels


@FEW
@given(st.lists(_INPUT, max_size=4))
def test_sentiment_serve_text_is_well_formed_for_any_input(served, texts):
    out, labels = _call(served, "sentiment", texts)
    b = len(texts)
    assert out["label"].shape == out["label_id"].shape == (b,)
    assert out["probabilities"].shape == (b, len(labels))
    assert np.all(np.isfinite(out["probabilities"])) and np.allclose(
        out["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert [labels[i] for i in out["label_id"]] == [v.decode() for v in out["label"]]


@FEW
@given(st.lists(_INPUT, max_size=4))
def test_ner_serve_text_is_well_formed_for_any_input(served, texts):
    out, labels = _call(served, "ner", texts)
    b = len(texts)
    width = out["words"].shape[1]
    assert out["words"].shape == out["tags"].shape == (b, width)
    assert out["num_words"].shape == out["num_entities"].shape == (b,)
    for i, raw in enumerate(texts):
        n, e = int(out["num_words"][i]), int(out["num_entities"][i])
        assert 0 <= n <= width and 0 <= e <= n
        assert all(w.strip() for w in out["words"][i][:n])
        assert all(t.decode() in labels for t in out["tags"][i][:n])
        assert all(t == b"" for t in out["tags"][i][n:])
        valid = raw.decode("utf-8", errors="replace").encode("utf-8") == raw
        for j in range(e):  # byte offsets into the input (U+FFFD for each bad byte run)
            start, end = int(out["entity_start"][i][j]), int(out["entity_end"][i][j])
            assert 0 <= start < end <= 3 * len(raw)
            assert not valid or raw[start:end] == out["entity_text"][i][j]
        assert all(s == -1 for s in out["entity_start"][i][e:])


@FEW
@given(st.lists(_INPUT, max_size=4))
def test_fill_mask_serve_text_is_well_formed_for_any_input(served, texts):
    out, _ = _call(served, "fill_mask", texts)
    b = len(texts)
    assert out["num_masks"].shape == (b,) and out["tokens"].shape[0] == b
    assert out["tokens"].shape == out["probabilities"].shape
    probabilities = out["probabilities"]
    assert np.all(np.isfinite(probabilities)) and np.all((probabilities >= 0)
                                                          & (probabilities <= 1))
    for i in range(b):
        masks = int(out["num_masks"][i])
        assert masks <= out["tokens"].shape[1]
        assert all(tok != b"" for tok in out["tokens"][i][:masks].ravel())
        assert np.all(probabilities[i][masks:] == 0)
