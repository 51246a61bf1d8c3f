"""benchmarks/pipeline_throughput.py compares like with like: its keras-hub side reads the
vocabulary file its tfmask side reads, normalises and splits text into the same word-piece ids
(accents stripped: keras-hub's `BertTokenizer` keeps them by default, which would turn "café"
into [UNK]), and its batches have the sequence length and prediction slots tfmask's get
(`--seq-len`, `--max-predictions`), one line a sequence. (tfmask's own pipeline shapes are
tested in test_data.py; the Hugging Face side needs torch and is not tested here.)"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import pipeline_throughput as bench  # noqa: E402
from tfmask.text.tokenization import WordPieceTokenizer  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "un",
         "##aff", "##able", "cafe", ",", "."]
TEXT = ["The cat sat on the mat.", "Unaffable CAFÉ cat, the café.", "", "the cat"]


def _unmasked(x, y, weights) -> np.ndarray:
    """The token ids before masking: each predicted slot's label put back at its position."""
    ids = x["token_ids"].numpy().copy()
    for row, (positions, labels, w) in enumerate(zip(x["mask_positions"].numpy(), y.numpy(),
                                                     weights.numpy())):
        ids[row, positions[w > 0]] = labels[w > 0]
    return ids


def test_keras_hub_side_reads_tfmasks_vocabulary_at_its_shapes(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT * 8) + "\n", encoding="utf-8")
    args = bench.parse_args(["--seq-len", "16", "--batch-size", "4", "--max-predictions", "3"])

    lines = bench.corpus_lines([str(corpus)], seed=0)
    assert sorted(lines) == sorted([t for t in TEXT if t] * 8)  # blank lines dropped
    assert lines == bench.corpus_lines([str(corpus)], seed=0)  # one order for both anchors

    preprocessor = bench.keras_hub_preprocessor(args, str(vocab))
    ours = WordPieceTokenizer.from_file(str(vocab))
    assert preprocessor.tokenizer.vocabulary_size() == ours.vocabulary_size == len(VOCAB)
    expected = ours.pieces_and_word_starts(lines)[0].to_list()
    assert preprocessor.tokenizer(lines) == expected  # (eager keras-hub gives lists)
    assert 1 not in sum(expected, [])  # no [UNK]: "CAFÉ" and "café" are "cafe" on both sides

    x, y, weights = next(iter(bench.keras_hub_dataset(args, preprocessor, lines)))
    assert x["token_ids"].shape == (4, 16) and x["mask_positions"].shape == (4, 3)
    assert y.shape == weights.shape == (4, 3)
    for row, pieces in zip(_unmasked(x, y, weights), expected):  # one line a sequence
        assert row.tolist() == [2, *pieces, 3] + [0] * (16 - len(pieces) - 2)

