"""CoNLL-formatted NER files read as pretraining text: their sentences as lines.

A pretraining corpus is plain text (one sentence or paragraph a line, a blank line between
documents). A corpus whose files are all CoNLL files (one word a line with its tags in
columns, a blank line between sentences, `-DOCSTART-` between documents, as `readers.read_conll`
reads them) is read as text too, so `tfmask pretrain --corpus train.txt` works on the NER
training file itself, and `--masking entity` takes its entities from the NER tags:

    CoNLL file                       pretraining lines
    -DOCSTART- -X- -X- O             ""               (end of a document)
                                     -
    EU NNP B-NP B-ORG                "EU rejects"
    rejects VBZ B-VP O
                                     -
    Peter NNP B-NP B-PER             "Peter Blackburn"
    Blackburn NNP I-NP I-PER

A file is taken for CoNLL when its first 200 non-blank lines (`-DOCSTART-` lines aside) all
have the same number (>= 2) of space- or tab-separated columns and a last column that is a
tag (O, B-X, I-X, E-X or S-X): prose never looks like that.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfmask.text.labels import TAG

_DOCSTART = "-DOCSTART-"
_PROBE_LINES = 200


def is_conll_file(path: str) -> bool:
    """Whether `path` looks like a CoNLL NER file (see the module docstring)."""
    columns_seen = None
    probed = 0
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", errors="replace").strip(" \t\r\n")
            if not line or line.startswith(_DOCSTART):
                continue
            columns = line.replace("\t", " ").split()
            if len(columns) < 2 or not TAG.fullmatch(columns[-1]):
                return False
            if columns_seen is None:
                columns_seen = len(columns)
            elif len(columns) != columns_seen:
                return False
            probed += 1
            if probed >= _PROBE_LINES:
                break
    return probed > 0


def is_conll_corpus(files: Sequence[str]) -> bool:
    """True when every file is a CoNLL file, False when none is; a mix is an error (one
    corpus, one format) naming the first file of the minority format."""
    kinds = [is_conll_file(f) for f in files]
    if all(kinds) and kinds:
        return True
    if any(kinds):
        odd = files[kinds.index(True)]
        raise ValueError(f"--corpus mixes CoNLL files ({odd}) with plain text files: give "
                         "one format at a time")
    return False


def conll_file_lines(path: tf.Tensor) -> tf.data.Dataset:
    """The sentences of one CoNLL file (a scalar string path, usable in `interleave`) as
    lines, words joined by spaces, with an empty line for each `-DOCSTART-` (a document end).

    The whole file is rewritten with a few regular expressions in the graph (one word a line
    -> its first column; blank lines -> sentence ends), much faster than a per-line `scan`.
    """
    text = tf.strings.regex_replace(tf.io.read_file(path), "\r", "")
    # A document break becomes a sentence of its own, "\x02", framed by blank lines.
    text = tf.strings.regex_replace(text, "(?m)^[ \t]*" + _DOCSTART + "[^\n]*$", "\n\x02\n")
    text = tf.strings.regex_replace(text, "(?m)^[ \t]*(\\S+)[^\n]*$", "\\1")  # first column
    text = tf.strings.regex_replace(text, "\n([ \t]*\n)+", "\x01")  # sentence ends
    sentences = tf.strings.split(text, "\x01")
    sentences = tf.strings.strip(tf.strings.regex_replace(sentences, "\n", " "))
    sentences = tf.boolean_mask(sentences, tf.strings.length(sentences) > 0)
    return tf.data.Dataset.from_tensor_slices(
        tf.where(tf.equal(sentences, "\x02"), "", sentences))
