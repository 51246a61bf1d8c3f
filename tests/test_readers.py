"""Fine-tuning readers: CoNLL files, TSV/CSV classification files, TFDS sources.

Every input is a small hand-written file in tmp_path, so each expected word, tag, id and
error line is visible in the test. Each malformed case checks the exact `path:line:` prefix
of the message. TFDS sources are read from tiny datasets built locally by
`GeneratorBasedBuilder`s with the real datasets' feature names (nothing is downloaded).
"""

from __future__ import annotations

import os
import random
import re

import numpy as np
import pytest

from tfmask.text import readers
from tfmask.text.labels import detect_scheme, entity_types, label_vocabulary, to_iob2
from tfmask.train.metrics import entity_spans
from tfmask.text.readers import ReaderError, Sentence


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def raises_at(path, line, match=""):
    """`pytest.raises(ReaderError)` whose message starts with `path:line:`."""
    prefix = f"{path}:{line}:" if line is not None else f"{path}:"
    return pytest.raises(ReaderError, match=rf"^{re.escape(prefix)} .*{match}")


# --- CoNLL ------------------------------------------------------------------------------------

CONLL_2003 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def test_read_conll_2003_layout(tmp_path):
    path = write(tmp_path, "train.txt", CONLL_2003)
    assert readers.read_conll(path) == [
        Sentence(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"], 3),
        Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"], 8),
        Sentence(["BRUSSELS", "1996-08-22"], ["B-LOC", "O"], 13),
    ]
    # Another tag column: the chunk tags (positive or negative index).
    chunks = readers.read_conll(path, tag_column=2)
    assert chunks == readers.read_conll(path, tag_column=-2)
    assert chunks[0].tags == ["B-NP", "B-VP", "B-NP", "I-NP"]


def test_read_conll_two_columns_crlf_no_final_newline(tmp_path):
    text = "\n\nJohn B-PER\r\nlives O\r\n\r\n\r\nin\tO\r\nRome   B-LOC"  # no final newline
    path = write(tmp_path, "two.txt", text)
    assert readers.read_conll(path) == [
        Sentence(["John", "lives"], ["B-PER", "O"], 3),
        Sentence(["in", "Rome"], ["O", "B-LOC"], 7),
    ]
    path = write(tmp_path, "trailing.txt", "a O\nb B-X\n\n\n  \n")
    assert readers.read_conll(path) == [Sentence(["a", "b"], ["O", "B-X"], 1)]


# IOB1 -> IOB2: an I-X that begins a chunk becomes B-X; B-X (IOB1's "new chunk right after
# a chunk of the same type") stays.
IOB1_TO_IOB2 = [
    # word        IOB1      IOB2
    ("Peter", "I-PER", "B-PER"),
    ("Blackburn", "I-PER", "I-PER"),
    ("met", "O", "O"),
    ("Paris", "I-LOC", "B-LOC"),
    ("Lyon", "B-LOC", "B-LOC"),
    ("Nice", "I-LOC", "I-LOC"),
    ("EU", "I-ORG", "B-ORG"),  # type switch after LOC
    ("German", "I-MISC", "B-MISC"),
]


def test_read_conll_iob1_to_iob2(tmp_path):
    words, iob1, iob2 = zip(*IOB1_TO_IOB2)
    path = write(tmp_path, "iob1.txt", "".join(f"{w} {t}\n" for w, t in zip(words, iob1)))
    assert detect_scheme([list(iob1)]) == "IOB1"
    for scheme in ("auto", "IOB1"):
        [sentence] = readers.read_conll(path, scheme=scheme)
        assert sentence.tags == list(iob2)
        assert entity_spans(sentence.tags) == entity_spans(iob1)  # the same entities


def test_read_conll_iobes_to_iob2(tmp_path):
    table = [("Peter", "B-PER", "B-PER"), ("Blackburn", "E-PER", "I-PER"), ("in", "O", "O"),
             ("Paris", "S-LOC", "B-LOC"), ("Lyon", "S-LOC", "B-LOC"),
             ("New", "B-LOC", "B-LOC"), ("York", "I-LOC", "I-LOC"), ("City", "E-LOC", "I-LOC")]
    words, iobes, iob2 = zip(*table)
    path = write(tmp_path, "iobes.txt", "".join(f"{w} {t}\n" for w, t in zip(words, iobes)))
    assert detect_scheme([list(iobes)]) == "IOBES"
    for scheme in ("auto", "IOBES"):
        [sentence] = readers.read_conll(path, scheme=scheme)
        assert sentence.tags == list(iob2)


def test_scheme_detection_is_per_file(tmp_path):
    # Sentence 2 alone looks IOB2; sentence 1's chunk-initial I- makes the file IOB1.
    path = write(tmp_path, "f.txt", "a I-PER\nb B-PER\n\nc B-LOC\nd I-LOC\n")
    assert [s.tags for s in readers.read_conll(path)] == [["B-PER", "B-PER"],
                                                          ["B-LOC", "I-LOC"]]
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "IOB2"
    assert detect_scheme([["O", "O"]]) == "IOB2"


def test_to_iob2_keeps_conlleval_entities():
    rng = random.Random(3)
    tag_set = ["O"] * 4 + [f"{p}-{t}" for t in ("A", "B") for p in "BIES"]
    for _ in range(300):
        tags = [rng.choice(tag_set) for _ in range(rng.randint(0, 10))]
        iob2 = to_iob2(tags)
        assert entity_spans(iob2) == entity_spans(tags)
        assert detect_scheme([iob2]) == "IOB2"
        assert to_iob2(iob2) == iob2


def test_stated_scheme_is_checked(tmp_path):
    path = write(tmp_path, "iob1.txt", "a O\n\nb O\nc I-PER\n")
    with raises_at(path, 4, "tag 'I-PER' follows 'O'; in IOB2 an entity begins with B-PER"):
        readers.read_conll(path, scheme="IOB2")
    path = write(tmp_path, "start.txt", "a I-PER\n")
    with raises_at(path, 1, "starts the sentence"):
        readers.read_conll(path, scheme="IOB2")
    path = write(tmp_path, "iobes.txt", "a O\nb S-PER\n")
    with raises_at(path, 2, "'S-PER' is not an IOB1 tag"):
        readers.read_conll(path, scheme="IOB1")
    path = write(tmp_path, "bad_iobes.txt", "a B-PER\nb O\n")
    with raises_at(path, 1, "must be followed by I-PER or E-PER, not 'O'"):
        readers.read_conll(path, scheme="IOBES")
    path = write(tmp_path, "bad_iobes2.txt", "a O\n\nb O\nc E-LOC\n")
    with raises_at(path, 4, "must follow B-LOC or I-LOC, not 'O'"):
        readers.read_conll(path, scheme="IOBES")
    with pytest.raises(ValueError, match="scheme must be one of"):
        readers.read_conll(path, scheme="BIO")


def test_conll_errors_name_file_and_line(tmp_path):
    path = write(tmp_path, "one.txt", "\nJohn\nlives O\n")
    with raises_at(path, 2, "1 column"):
        readers.read_conll(path)
    path = write(tmp_path, "count.txt", "-DOCSTART- -X- O\n\nJohn NNP B-PER\nlives VBZ O\n\n"
                                        "in O\n")
    with raises_at(path, 6, "2 columns, but line 3 .the first word line. has 3"):
        readers.read_conll(path)
    path = write(tmp_path, "tag.txt", "John B-PER\nlives 0\n")  # zero, not O
    with raises_at(path, 2, "tag '0' .column 1. is not O, B-X, I-X, E-X or S-X"):
        readers.read_conll(path)
    path = write(tmp_path, "bare.txt", "John PER\n")
    with raises_at(path, 1, "tag 'PER'"):
        readers.read_conll(path)
    path = write(tmp_path, "utf8.txt", "John B-PER\n\nM\xfcller B-PER\n".encode("latin-1"))
    with raises_at(path, 3, r"not UTF-8 \(byte 0xfc at byte offset 13 of the file, column 2 of the line\)"):
        readers.read_conll(path)
    path = write(tmp_path, "cols.txt", "John NNP B-PER\n")
    with raises_at(path, 1, "tag_column=3 does not name a tag column of a 3-column line"):
        readers.read_conll(path, tag_column=3)
    with raises_at(path, 1, "tag_column=0"):
        readers.read_conll(path, tag_column=0)
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n  \n"),
                       ("docstart.txt", "-DOCSTART- -X- -X- O\n\n")]:
        path = write(tmp_path, name, text)
        with raises_at(path, None, "empty file"):
            readers.read_conll(path)


def test_utf8_words_and_bom(tmp_path):
    path = write(tmp_path, "u.txt", "\ufeffMüller B-PER\nin O\nKöln B-LOC\n")
    [sentence] = readers.read_conll(path)
    assert sentence.words == ["Müller", "in", "Köln"]


# --- label lists ------------------------------------------------------------------------------

def test_label_vocabulary_and_entity_types():
    sentences = [Sentence(["a", "b"], ["B-PER", "I-PER"], 1),
                 Sentence(["c", "d"], ["O", "B-LOC"], 4),
                 Sentence(["e"], ["B-MISC"], 7)]
    labels = label_vocabulary(sentences)
    # I-LOC and I-MISC never occur, but every type gets both labels.
    assert labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-PER", "I-PER"]
    assert entity_types(labels) == ["LOC", "MISC", "PER"]
    assert label_vocabulary([Sentence(["a"], ["O"], 1)]) == ["O"]
    with pytest.raises(ValueError, match="'S-PER' .sentence at line 2. is not IOB2"):
        label_vocabulary([Sentence(["a"], ["S-PER"], 2)])


def test_save_and_load_labels(tmp_path):
    path = str(tmp_path / "labels.txt")
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    readers.save_labels(labels, path)
    assert open(path, encoding="utf-8").read() == "O\nB-LOC\nI-LOC\nB-PER\nI-PER\n"
    assert readers.load_labels(path) == labels
    with pytest.raises(ValueError, match="duplicate"):
        readers.save_labels(["O", "O"], path)
    with pytest.raises(ValueError, match="one a line"):
        readers.save_labels(["a\nb"], path)
    bad = write(tmp_path, "dup.txt", "neg\npos\nneg\n")
    with raises_at(bad, 3, "label 'neg' repeats line 1"):
        readers.load_labels(bad)
    with raises_at(write(tmp_path, "none.txt", "\n"), None, "empty file"):
        readers.load_labels(str(tmp_path / "none.txt"))


# --- classification files ---------------------------------------------------------------------

def test_tsv_with_header_integer_labels(tmp_path):
    path = write(tmp_path, "dev.tsv", 'sentence\tlabel\na "gorgeous film \t1\ndull \t0\n\n')
    texts, labels, names = readers.read_classification(path)
    # Tab-separated fields are literal: the unbalanced quote is part of the text.
    assert texts == ['a "gorgeous film ', "dull "]
    assert labels == [1, 0] and names == ["0", "1"]
    # The same file by column name and by index.
    assert readers.read_classification(path, text_column="sentence",
                                       label_column="label") == (texts, labels, names)
    assert readers.read_classification(path, text_column=0, label_column=-1) == (
        texts, labels, names)


def test_tsv_without_header(tmp_path):
    path = write(tmp_path, "train.tsv", "good\t1\nbad\t0\nfine\t2\n")
    assert readers.read_classification(path) == (["good", "bad", "fine"], [1, 0, 2],
                                                 ["0", "1", "2"])
    # Names for the ids come from the caller (e.g. the model's labels.txt).
    assert readers.read_classification(path, label_names=["neg", "pos", "neu"])[2] == [
        "neg", "pos", "neu"]
    with raises_at(path, 3, r"label 2 is not a class id of the 2 labels \['neg', 'pos'\]"):
        readers.read_classification(path, label_names=["neg", "pos"])


def test_csv_quoting_and_string_labels(tmp_path):
    text = ('review,sentiment\n'
            '"Good, not great",positive\n'
            '"He said ""wow""",positive\n'
            '"two\nlines",negative\n'
            'plain,neutral\n')
    path = write(tmp_path, "reviews.csv", text)
    texts, labels, names = readers.read_classification(path)
    assert texts == ["Good, not great", 'He said "wow"', "two\nlines", "plain"]
    assert names == ["negative", "neutral", "positive"]  # sorted
    assert labels == [2, 2, 0, 1]
    # Labels first, by name.
    path = write(tmp_path, "first.csv", "label,text\nb,x\na,y\n")
    assert readers.read_classification(path) == (["x", "y"], [1, 0], ["a", "b"])
    # No header: row 1's label 'pos' occurs again below, so row 1 is data.
    path = write(tmp_path, "nohead.csv", "good,pos\nbad,neg\nfine,pos\n")
    assert readers.read_classification(path) == (["good", "bad", "fine"], [1, 0, 1],
                                                 ["neg", "pos"])
    assert readers.read_classification(path, header=True)[0] == ["bad", "fine"]


def test_dev_labels_map_onto_training_labels(tmp_path):
    train = write(tmp_path, "train.csv", "text,label\na,pos\nb,neg\nc,neu\n")
    _, _, names = readers.read_classification(train)
    dev = write(tmp_path, "dev.csv", "text,label\nd,pos\ne,pos\n")  # lacks two classes
    assert readers.read_classification(dev, label_names=names) == (
        ["d", "e"], [2, 2], ["neg", "neu", "pos"])
    unseen = write(tmp_path, "unseen.csv", "text,label\nd,pos\ne,mixed\n")
    with raises_at(unseen, 3, r"label 'mixed' is not one of the training labels "
                              r"\['neg', 'neu', 'pos'\]"):
        readers.read_classification(unseen, label_names=names)


def test_delimiter_sniffed_for_other_extensions(tmp_path):
    path = write(tmp_path, "data.txt", "text;label\nnice one;1\nawful;0\nok;1\n")
    assert readers.read_classification(path) == (["nice one", "awful", "ok"], [1, 0, 1],
                                                 ["0", "1"])
    path = write(tmp_path, "data.dat", "x\ty\n")
    assert readers.read_classification(path, delimiter="\t", header=False)[2] == ["y"]


def test_classification_errors_name_file_and_line(tmp_path):
    path = write(tmp_path, "fields.tsv", "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    with raises_at(path, 3, r"3 fields, but line 1 has 2 \(delimiter '\\t'\)"):
        readers.read_classification(path)
    path = write(tmp_path, "empty_text.csv", 'text,label\ngood,1\n"  ",0\n')
    with raises_at(path, 3, "empty text in column 'text'"):
        readers.read_classification(path)
    path = write(tmp_path, "no_label.tsv", "good\t1\nbad\t\n")
    with raises_at(path, 2, "missing label"):
        readers.read_classification(path)
    path = write(tmp_path, "cols.tsv", "sentence\tlabel\ngood\t1\n")
    with raises_at(path, 1, r"no column 'review'; the header's columns are "
                            r"\['sentence', 'label'\]"):
        readers.read_classification(path, text_column="review")
    with raises_at(path, 1, "label_column=5 is out of range for 2 columns"):
        readers.read_classification(path, label_column=5)
    with raises_at(path, 1, "names a column, but the file has no header"):
        readers.read_classification(path, label_column="label", header=False)
    path = write(tmp_path, "multi.csv", 'text,label\n"a\nb",1\nc,0,x\n')  # record 2 = lines 2-3
    with raises_at(path, 4, "3 fields"):
        readers.read_classification(path)
    path = write(tmp_path, "quote.csv", 'text,label\n"a"b,1\n')
    with raises_at(path, 2, "malformed record"):
        readers.read_classification(path)
    path = write(tmp_path, "utf8.tsv", "good\t1\n" + "caf\xe9\t0\n", encoding="latin-1")
    with raises_at(path, 2, "not UTF-8"):
        readers.read_classification(path)
    path = write(tmp_path, "one.tsv", "just text\n")
    with raises_at(path, 1, "1 field"):
        readers.read_classification(path)
    path = write(tmp_path, "head.tsv", "sentence\tlabel\n")
    with raises_at(path, None, "no data rows after the header"):
        readers.read_classification(path)
    with raises_at(write(tmp_path, "empty.tsv", ""), None, "empty file"):
        readers.read_classification(str(tmp_path / "empty.tsv"))


# --- TFDS sources: tiny local datasets with the real feature names ----------------------------

tfds = pytest.importorskip("tensorflow_datasets")
from tensorflow_datasets.core.dataset_builders.conll import (  # noqa: E402
    conll_dataset_builder_utils as conll_lib)

CONLL_SPLITS = {
    # IOB2, as TFDS conll2003 stores it
    "train": [(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
              (["Peter", "Blackburn"], ["B-PER", "I-PER"])],
    # IOB1-style ids (I- at a chunk start): the reader converts them
    "dev": [(["Peter", "Blackburn", "in", "Paris"], ["I-PER", "I-PER", "O", "I-LOC"])],
}


class TfmaskTinyConll(tfds.core.GeneratorBasedBuilder):
    """conll2003's features (tokens, pos, chunks, ner) over a few hand-written sentences."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self,
                                     features=conll_lib.CONLL_2003_CONFIG.features_dict,
                                     disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in CONLL_SPLITS}

    def _generate_examples(self, split):
        for i, (words, ner) in enumerate(CONLL_SPLITS[split]):
            yield i, {"tokens": words, "pos": ["NN"] * len(words),
                      "chunks": ["O"] * len(words), "ner": ner}


SST2 = [("a gorgeous film", 1), ("dull and slow", 0), ("fine", 1)]


class TfmaskTinySst2(tfds.core.GeneratorBasedBuilder):
    """glue/sst2's features: `sentence`, `label` (negative/positive); test labels are -1."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "sentence": tfds.features.Text(), "idx": tfds.features.Scalar(np.int32),
            "label": tfds.features.ClassLabel(names=["negative", "positive"])}),
            disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(False), "test": self._generate_examples(True)}

    def _generate_examples(self, hide_labels):
        for i, (text, label) in enumerate(SST2):
            yield i, {"sentence": text, "idx": i, "label": -1 if hide_labels else label}


class TfmaskTinyImdb(tfds.core.GeneratorBasedBuilder):
    """imdb_reviews' features: `text`, `label` (neg/pos)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["neg", "pos"])}), disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, (text, label) in enumerate(SST2):
            yield i, {"text": f"<br />{text} café", "label": label}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    for builder in (TfmaskTinyConll, TfmaskTinySst2, TfmaskTinyImdb):
        builder(data_dir=data_dir).download_and_prepare()
    return data_dir


def test_tfds_conll(tfds_dir):
    train = readers.tfds_conll("train", data_dir=tfds_dir, name="tfmask_tiny_conll")
    assert train == [Sentence(words, tags, i + 1)
                     for i, (words, tags) in enumerate(CONLL_SPLITS["train"])]
    [dev] = readers.tfds_conll("dev", data_dir=tfds_dir, name="tfmask_tiny_conll")
    assert dev.tags == ["B-PER", "I-PER", "O", "B-LOC"]
    assert label_vocabulary(train) == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG",
                                               "B-PER", "I-PER"]


def test_tfds_classification(tfds_dir):
    texts, labels, names = readers.tfds_classification("tfmask_tiny_sst2", "train",
                                                       data_dir=tfds_dir)
    assert texts == [t for t, _ in SST2] and labels == [1, 0, 1]
    assert names == ["negative", "positive"]
    with pytest.raises(ValueError, match="example 1 has label -1"):
        readers.tfds_classification("tfmask_tiny_sst2", "test", data_dir=tfds_dir)
    texts, labels, names = readers.tfds_classification("tfmask_tiny_imdb", "train",
                                                       data_dir=tfds_dir)
    assert texts[0] == "<br />a gorgeous film café" and labels == [1, 0, 1]
    assert names == ["neg", "pos"]
    with pytest.raises(ValueError, match=r"no feature 'review' among \['label', 'text'\]"):
        readers.tfds_classification("tfmask_tiny_imdb", "train", data_dir=tfds_dir,
                                    text_key="review")


# --- the real files in ../shared/data ---------------------------------------------------------

def test_real_conll2003_valid(shared_data):
    sentences = readers.read_conll(os.path.join(shared_data, "conll2003", "valid.txt"))
    assert len(sentences) == 3250
    assert label_vocabulary(sentences) == [
        "O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert sentences[0].line == 1 and sentences[0].words[:2] == ["CRICKET", "-"]
    assert all(len(s.words) == len(s.tags) > 0 for s in sentences)


def test_real_sst2_dev(shared_data):
    texts, labels, names = readers.read_classification(
        os.path.join(shared_data, "sst2", "dev.tsv"))
    assert len(texts) == len(labels) == 6735
    assert set(labels) == {0, 1} and names == ["0", "1"]
    assert all(t.strip() for t in texts)


def test_readers_and_metrics_import_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tfmask.text.readers, tfmask.train.metrics; "
            "assert not {'tensorflow', 'tensorflow_datasets'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
