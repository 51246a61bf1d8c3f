"""Fine-tuning data readers: CoNLL NER files, TSV/CSV classification files, TFDS sources.

Plain Python: reading a file needs no TensorFlow (only the `tfds_*` functions import
`tensorflow_datasets`). Every reader returns Python lists (`examples.py` maps them to label
ids, `finetuning_data.py` turns them into tensors), and every malformed input fails with a `ReaderError` that starts `path:line:`,
so the line can be opened in an editor straight from the message.

NER tags always come out in IOB2 (every entity starts with `B-`), whatever the file used:

    word       scheme IOB1    IOB2     IOBES
    Peter      I-PER          B-PER    B-PER
    Blackburn  I-PER          I-PER    E-PER
    in         O              O        O
    Paris      I-LOC          B-LOC    S-LOC
    Lyon       B-LOC          B-LOC    S-LOC      (IOB1 uses B- only between two chunks)

Conversion keeps the entities conlleval (and seqeval's default mode) reads from the original
tags, so `labels.entity_spans(tags)` is the same before and after. Tag schemes, spans and
label lists live in `labels.py`; this module reads files.

The label vocabulary of a token classifier is learned from the training file and saved with
the model (`labels.txt`), so an evaluation file that lacks a type still maps onto the same ids:

    label_vocabulary(train)  ->  ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", ...]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from typing import Sequence

from tfmask.text.labels import SCHEMES, TAG, detect_scheme, scheme_error, to_iob2

_INT = re.compile(r"\d+")
# CoNLL columns are separated by spaces or tabs; other Unicode spaces (a no-break space
# inside a token) belong to the word, as the CoNLL scripts read it.
_COLUMN_SEP = re.compile(r"[ \t]+")
_DOCSTART = "-DOCSTART-"
# Header names taken as the text / label column when none is given.
_TEXT_NAMES = ("sentence", "text")
_LABEL_NAMES = ("label",)
# Text features of the TFDS classification datasets this module knows.
_TFDS_TEXT_KEYS = {"glue/sst2": "sentence", "imdb_reviews": "text"}
#: The two text features of the TFDS sentence-pair datasets (GLUE's, and any dataset with
#: the same feature names), in the order `[CLS] first [SEP] second [SEP]`.
TFDS_PAIR_KEYS = (("premise", "hypothesis"),  # glue/mnli, snli
                  ("question", "sentence"),  # glue/qnli
                  ("sentence1", "sentence2"),  # glue/rte, glue/mrpc
                  ("question1", "question2"))  # glue/qqp


class ReaderError(ValueError):
    """A malformed input file; the message starts with `path:line:`."""

    def __init__(self, path: str, line: int | None, message: str):
        where = f"{path}:{line}:" if line is not None else f"{path}:"
        super().__init__(f"{where} {message}")
        self.path = path
        self.line = line


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence of a NER corpus.

    Attributes:
      words: the words, as split by the file's columns (no further tokenization).
      tags: one IOB2 tag per word (`"O"`, `"B-PER"`, `"I-PER"`, ...).
      line: 1-based line of the sentence's first word in its file (for TFDS sources: the
        1-based position of the example in its split).
    """

    words: list[str]
    tags: list[str]
    line: int


# ----------------------------------------------------------------------------------------------
# Text files
# ----------------------------------------------------------------------------------------------
def _read_text(path: str) -> str:
    """The file decoded as UTF-8 (a leading BOM dropped); bad bytes name their line."""
    with open(path, "rb") as fh:
        data = fh.read()
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        from tfmask.text.text_files import not_utf8  # it builds on this module's ReaderError

        start = bom + e.start
        raise not_utf8(path, data, start, data.count(b"\n", 0, start) + 1, start) from None


# ----------------------------------------------------------------------------------------------
# NER: CoNLL files and tag schemes
# ----------------------------------------------------------------------------------------------
def read_conll(path: str, tag_column: int = -1, scheme: str = "auto") -> list[Sentence]:
    """Reads a CoNLL-format NER file into sentences with IOB2 tags.

    Format: one word a line as columns separated by spaces or tabs, the word first and the
    tag in `tag_column`; a blank line between sentences; `-DOCSTART-` lines (document
    breaks, as in CoNLL-2003) are skipped and end a sentence like a blank line. Every word
    line must have as many columns as the file's first one. Trailing blank lines, CRLF line
    ends and a missing final newline are fine.

        -DOCSTART- -X- -X- O

        EU NNP B-NP B-ORG              -> Sentence(words=["EU", "rejects"],
        rejects VBZ B-VP O                          tags=["B-ORG", "O"], line=3)

    Args:
      path: the file (UTF-8).
      tag_column: index of the tag column, Python style (-1 = last).
      scheme: `"auto"` detects the scheme of the whole file (see `detect_scheme`) and
        converts leniently, as conlleval reads it; `"IOB1"`, `"IOB2"` or `"IOBES"` states it,
        and a tag that breaks that scheme's rules is an error.

    Returns:
      The sentences, in file order, tags converted to IOB2 (`to_iob2`).

    Raises:
      ReaderError: `path:line: ...` for a line with too few or a different number of columns,
        a tag that is not O / B-X / I-X / E-X / S-X, a tag that breaks the stated scheme,
        invalid UTF-8, or a file with no sentence at all.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    text = _read_text(path)
    sentences: list[tuple[int, list[str], list[str]]] = []  # (first line, words, tags)
    words: list[str] = []
    tags: list[str] = []
    num_columns = tag_index = first_line = None
    # Split on "\n" only: `str.splitlines` would also break lines at U+2028, U+0085, ...
    # and the line numbers in messages would drift from an editor's.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(" \t\r")
        columns = _COLUMN_SEP.split(line) if line else []
        if not columns or columns[0] == _DOCSTART:
            if words:
                sentences.append((number - len(words), words, tags))
                words, tags = [], []
            continue
        if num_columns is None:  # the first word line fixes the layout
            num_columns, first_line = len(columns), number
            if num_columns < 2:
                raise ReaderError(path, number, f"1 column ({line!r}); expected a "
                                                f"word and a tag separated by whitespace")
            tag_index = tag_column + num_columns if tag_column < 0 else tag_column
            if not 1 <= tag_index < num_columns:
                raise ReaderError(path, number, f"tag_column={tag_column} does not name a "
                                                f"tag column of a {num_columns}-column line "
                                                f"(column 0 is the word)")
        elif len(columns) != num_columns:
            raise ReaderError(path, number, f"{len(columns)} columns, but line {first_line} "
                                            f"(the first word line) has {num_columns}")
        tag = columns[tag_index]
        if not TAG.fullmatch(tag):
            raise ReaderError(path, number, f"tag {tag!r} (column {tag_index}) is not "
                                            f"O, B-X, I-X, E-X or S-X")
        words.append(columns[0])
        tags.append(tag)
    if words:  # no blank line after the last sentence
        sentences.append((number - len(words) + 1, words, tags))
    if not sentences:
        raise ReaderError(path, None, "empty file: no word lines")

    if scheme == "auto":
        scheme = detect_scheme(t for _, _, t in sentences)
    else:
        for start, _, sentence_tags in sentences:
            error = scheme_error(sentence_tags, scheme)
            if error:
                # A sentence's words sit on consecutive lines.
                raise ReaderError(path, start + error[0], error[1])
    convert = (lambda t: list(t)) if scheme == "IOB2" else to_iob2
    return [Sentence(words=w, tags=convert(t), line=start) for start, w, t in sentences]


def save_labels(labels: Sequence[str], path: str) -> None:
    """Writes a label list (`labels.txt`: one label a line, id = line number - 1)."""
    for label in labels:
        if not label or label != label.strip() or "\n" in label or "\r" in label:
            raise ValueError(f"label {label!r} cannot be written one a line")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in {list(labels)}")
    from tfmask.text.text_files import atomic_write  # it builds on this module's ReaderError

    atomic_write(path, "".join(label + "\n" for label in labels))


def load_labels(path: str) -> list[str]:
    """Reads a label list written by `save_labels`."""
    labels = [line.rstrip("\r") for line in _read_text(path).split("\n")]
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise ReaderError(path, None, "empty file: no labels")
    seen: dict[str, int] = {}
    for number, label in enumerate(labels, start=1):
        if not label.strip():
            raise ReaderError(path, number, "empty label")
        if label in seen:
            raise ReaderError(path, number, f"label {label!r} repeats line {seen[label]}")
        seen[label] = number
    return labels


# ----------------------------------------------------------------------------------------------
# Sequence classification: TSV / CSV files
# ----------------------------------------------------------------------------------------------
def _delimiter(path: str, text: str, delimiter: str | None) -> str:
    if delimiter is not None:
        return delimiter
    extension = os.path.splitext(path)[1].lower()
    if extension == ".tsv":
        return "\t"
    if extension == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters="\t,;|").delimiter
    except csv.Error:
        raise ReaderError(path, None, "cannot tell the delimiter (not .tsv or .csv, and "
                                      "sniffing failed); pass delimiter=") from None


def _rows(path: str, text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """`(first line, fields)` of every non-blank record."""
    # Tab-separated files are read GLUE-style, every character literal (a review may open
    # with a quote); other delimiters follow RFC 4180 quoting ("a, b" is one field).
    if delimiter == "\t":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = []
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ReaderError(path, start, f"malformed record: {e}") from None
        if any(f.strip() for f in fields):
            rows.append((start, fields))
        start = reader.line_num + 1
    return rows


def _column_index(path: str, column: int | str | None, header: list[str] | None,
                  num_fields: int, defaults: tuple[str, ...], fallback: int, what: str) -> int:
    """Resolves a column given by name or index (None: a default header name or `fallback`)."""
    if isinstance(column, str):
        if header is None:
            raise ReaderError(path, 1, f"{what}={column!r} names a column, but the file "
                                       f"has no header (header=False)")
        names = [h.strip() for h in header]
        if column not in names:
            raise ReaderError(path, 1, f"no column {column!r}; the header's columns are "
                                       f"{names}")
        return names.index(column)
    if column is None:
        if header is not None:
            names = [h.strip().lower() for h in header]
            for name in defaults:
                if name in names:
                    return names.index(name)
        return fallback
    index = column + num_fields if column < 0 else column
    if not 0 <= index < num_fields:
        raise ReaderError(path, 1, f"{what}={column} is out of range for {num_fields} "
                                   f"columns")
    return index


def _looks_like_header(first_label: str, other_labels: list[str],
                       label_names: Sequence[str] | None) -> bool:
    """Whether row 1 is a header, judged by its label cell (see `read_classification`)."""
    if label_names is not None:
        in_range = _INT.fullmatch(first_label) and int(first_label) < len(label_names)
        return not (first_label in label_names or in_range)
    if other_labels and all(_INT.fullmatch(v) for v in other_labels):
        return not _INT.fullmatch(first_label)
    if not other_labels:
        return not _INT.fullmatch(first_label)
    return first_label not in set(other_labels)


def read_classification(path: str, text_column: int | str | None = None,
                        label_column: int | str | None = None, delimiter: str | None = None,
                        label_names: Sequence[str] | None = None, header: bool | None = None,
                        text_pair_column: int | str | None = None,
                        ) -> tuple[list, list[int], list[str]]:
    """Reads a TSV or CSV file of (text, label) rows, e.g. GLUE's SST-2 `sentence<TAB>label`.

        sentence<TAB>label                   texts       ["a gorgeous film ", "dull "]
        a gorgeous film <TAB>1        ->     labels      [1, 0]
        dull <TAB>0                          label_names ["0", "1"]

    Delimiter: `delimiter`, else by extension (`.tsv` tab, `.csv` comma), else sniffed among
    tab, comma, semicolon and bar. Tab-separated fields are literal, as GLUE's and BERT's
    readers take them (a text may hold a lone quote); other delimiters use CSV quoting
    (`"Good, not great",1`).

    Header: `header=True/False` says it. Otherwise row 1 is a header when a column is given
    by name, or when its label cell is not a label the other rows make plausible: with
    `label_names`, when it is neither one of them nor an id below `len(label_names)`;
    when the other rows' labels are all integers, when it is not an integer; else when it
    does not occur among the other rows' labels.

    Columns: by header name or index (negative counts from the end). Defaults: the header
    column named `label` (else the last column) holds the label; the one named `sentence`
    or `text` (else the first other column) holds the text.

    Labels: when every label cell is a non-negative integer, the cells are class ids and
    `label_names` defaults to `["0", ..., str(max id)]`; otherwise they are names, and
    `label_names` defaults to their sorted set (save it with the model, `save_labels`).
    Pass the training `label_names` when reading evaluation data, so it maps onto the same
    ids: a label outside them is an error naming the label and its line.

    Args:
      path: the file (UTF-8).
      text_column: the text's column, name or index.
      label_column: the label's column, name or index.
      delimiter: the field separator; None chooses as above.
      label_names: class names, index = id; None learns them from this file.
      header: whether row 1 is a header; None detects it.
      text_pair_column: for sentence pairs (MRPC, MNLI, ...), the column of the second text,
        name or index; the texts then come back as `(text, text_pair)` tuples.

    Returns:
      `(texts, labels, label_names)`: the texts as written (`(text, text_pair)` tuples with
      `text_pair_column`), one class id (int) per text, and the class names.

    Raises:
      ReaderError: `path:line: ...` for a row with a different number of fields than row 1,
        an empty text, a missing label, an unknown column name (the message lists the
        header's columns), a label outside `label_names`, invalid UTF-8, an empty file.
    """
    text = _read_text(path)
    delimiter = _delimiter(path, text, delimiter)
    rows = _rows(path, text, delimiter)
    if not rows:
        raise ReaderError(path, None, "empty file: no rows")
    first_line, first = rows[0]
    num_fields = len(first)
    if num_fields < 2:
        raise ReaderError(path, first_line, f"1 field ({first[0].strip()!r}); expected a "
                                            f"text and a label separated by {delimiter!r}")
    named = any(isinstance(c, str) for c in (text_column, label_column, text_pair_column))
    if header is None:
        if named:
            header = True
        else:
            # The label column as it would be if row 1 were a header with a "label" cell.
            probe = _column_index(path, label_column, first, num_fields, _LABEL_NAMES,
                                  num_fields - 1, "label_column")
            others = [f[probe].strip() for _, f in rows[1:] if len(f) == num_fields]
            header = _looks_like_header(first[probe].strip(), others, label_names)
    header_row = first if header else None
    label_index = _column_index(path, label_column, header_row, num_fields, _LABEL_NAMES,
                                num_fields - 1, "label_column")
    text_index = _column_index(path, text_column, header_row, num_fields, _TEXT_NAMES,
                               1 if label_index == 0 else 0, "text_column")
    if text_index == label_index:
        raise ReaderError(path, first_line, f"text and label are the same column "
                                            f"({text_index})")
    pair_index = None
    if text_pair_column is not None:
        pair_index = _column_index(path, text_pair_column, header_row, num_fields, (), 0,
                                   "text_pair_column")
        if pair_index in (text_index, label_index):
            which = "text" if pair_index == text_index else "label"
            raise ReaderError(path, first_line, f"text_pair_column={text_pair_column!r} is "
                                                f"the {which} column ({pair_index})")
    data = rows[1:] if header else rows
    if not data:
        raise ReaderError(path, None, "no data rows after the header")

    texts, cells, lines = [], [], []
    text_name = repr(first[text_index].strip()) if header else str(text_index)
    for line, fields in data:
        if len(fields) != num_fields:
            raise ReaderError(path, line, f"{len(fields)} fields, but line {first_line} has "
                                          f"{num_fields} (delimiter {delimiter!r})")
        if not fields[text_index].strip():
            raise ReaderError(path, line, f"empty text in column {text_name}")
        if pair_index is not None and not fields[pair_index].strip():
            pair_name = repr(first[pair_index].strip()) if header else str(pair_index)
            raise ReaderError(path, line, f"empty text_pair in column {pair_name}")
        label = fields[label_index].strip()
        if not label:
            raise ReaderError(path, line, "missing label")
        texts.append(fields[text_index] if pair_index is None
                     else (fields[text_index], fields[pair_index]))
        cells.append(label)
        lines.append(line)

    if all(_INT.fullmatch(c) for c in cells):  # class ids
        ids = [int(c) for c in cells]
        if label_names is None:
            label_names = [str(i) for i in range(max(ids) + 1)]
        for i, line in zip(ids, lines):
            if i >= len(label_names):
                raise ReaderError(path, line, f"label {i} is not a class id of the "
                                              f"{len(label_names)} labels {list(label_names)}")
        return texts, ids, list(label_names)
    if label_names is None:
        label_names = sorted(set(cells))
    index = {name: i for i, name in enumerate(label_names)}
    for cell, line in zip(cells, lines):
        if cell not in index:
            raise ReaderError(path, line, f"label {cell!r} is not one of the training "
                                          f"labels {list(label_names)}")
    return texts, [index[c] for c in cells], list(label_names)


# ----------------------------------------------------------------------------------------------
# TFDS sources
# ----------------------------------------------------------------------------------------------
def _load_tfds(name: str, split: str, data_dir: str | None = None):
    """`(examples as NumPy dicts, tfds.core.DatasetInfo)` of a TFDS dataset split.

    Downloads and prepares the dataset the first time (as `tfds.load` does); any registered
    builder works, which is how tests point the readers at a tiny local dataset.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as e:  # noqa: BLE001  not found, offline, a bad split: TFDS's own types
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"--tfds {name}:{split}: {reason}") from None
    return tfds.as_numpy(ds), builder.info


def _decode(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def tfds_conll(split: str, data_dir: str | None = None, name: str = "conll2003",
               tag_feature: str = "ner") -> list[Sentence]:
    """Sentences of TFDS `conll2003` (splits `train`, `dev`, `test`) with IOB2 string tags.

    Tag ids become names through the dataset's `ClassLabel`; the split's scheme is detected
    and converted to IOB2 as `read_conll(scheme="auto")` does. `Sentence.line` is the
    example's 1-based position in the split.

    Args:
      split: a TFDS split, e.g. `"train"` or `"dev[:10%]"`.
      data_dir: TFDS data directory (None: TFDS's default).
      name: a dataset with `tokens` and a `Sequence(ClassLabel)` tag feature.
      tag_feature: which feature holds the tags (`"ner"`; `"chunks"` for chunking).
    """
    examples, info = _load_tfds(name, split, data_dir)
    tag_names = info.features[tag_feature].feature.names
    raw = []
    for position, example in enumerate(examples, start=1):
        words = [_decode(w) for w in example["tokens"]]
        tags = [tag_names[int(i)] for i in example[tag_feature]]
        raw.append((position, words, tags))
    convert = (lambda t: t) if detect_scheme(t for _, _, t in raw) == "IOB2" else to_iob2
    return [Sentence(words=w, tags=convert(t), line=p) for p, w, t in raw]


def tfds_classification(name: str, split: str, data_dir: str | None = None,
                        text_key: str | None = None, label_key: str = "label",
                        text_pair_key: str | None = None,
                        ) -> tuple[list, list[int], list[str]]:
    """`(texts, labels, label_names)` of a TFDS text-classification dataset split.

    Knows `glue/sst2` (text in `sentence`, labels negative/positive) and `imdb_reviews`
    (text in `text`, labels neg/pos); for another dataset the text is `text_key`, else its
    `sentence` or `text` feature. Names come from the label's `ClassLabel`.

    Sentence pairs: a dataset with one of the feature pairs of `TFDS_PAIR_KEYS` (glue/mnli
    `premise`/`hypothesis`, glue/qnli `question`/`sentence`, glue/rte and glue/mrpc
    `sentence1`/`sentence2`, glue/qqp `question1`/`question2`), or `text_key` with
    `text_pair_key`, gives `(text, text_pair)` tuples.

    Raises:
      ValueError: the split has unlabeled examples (GLUE test splits use label -1), or no
        text feature can be found.
    """
    examples, info = _load_tfds(name, split, data_dir)
    features = info.features
    text_key, text_pair_key = _text_keys(name, features, text_key, text_pair_key)
    if label_key not in features:
        raise ValueError(f"{name}: no feature {label_key!r} among {sorted(features)}")
    label_names = list(features[label_key].names)
    texts, labels = [], []
    for position, example in enumerate(examples, start=1):
        label = int(example[label_key])
        if label < 0:
            raise ValueError(f"{name}:{split}: example {position} has label {label} "
                             f"(unlabeled; GLUE hides its test labels)")
        text = _decode(example[text_key])
        texts.append(text if text_pair_key is None
                     else (text, _decode(example[text_pair_key])))
        labels.append(label)
    return texts, labels, label_names


def tfds_text_keys(name: str, data_dir: str | None = None) -> tuple[str, str | None]:
    """`(text_key, text_pair_key)`: the text features `tfds_classification` reads from TFDS
    `name` (`text_pair_key` None for single texts), from the dataset's declared features."""
    import tensorflow_datasets as tfds

    return _text_keys(name, tfds.builder(name, data_dir=data_dir).info.features)


def _text_keys(name, features, text_key=None, text_pair_key=None):
    if text_key is None and text_pair_key is None:
        text_key, text_pair_key = next(
            (keys for keys in TFDS_PAIR_KEYS if all(k in features for k in keys)), (None, None))
    if text_key is None:
        text_key = _TFDS_TEXT_KEYS.get(name.split(":")[0])
        if text_key is None:
            text_key = next((k for k in _TEXT_NAMES if k in features), None)
        if text_key is None:
            raise ValueError(f"{name}: no 'sentence' or 'text' feature among "
                             f"{sorted(features)}; pass text_key=")
    for key in (text_key, text_pair_key):
        if key is not None and key not in features:
            raise ValueError(f"{name}: no feature {key!r} among {sorted(features)}")
    return text_key, text_pair_key
