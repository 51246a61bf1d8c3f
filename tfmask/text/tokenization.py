"""WordPiece vocabularies and in-graph tokenization with tensorflow-text.

Text becomes word pieces in two graph steps, as in BERT:

1. `basic_split`, BERT's basic tokenizer: control characters deleted, Unicode spaces made
   spaces, optional lower-casing (lower case, NFD, accents stripped), then a split on
   whitespace, punctuation and CJK characters -> words. It follows Hugging Face's
   `BertTokenizer` (the reference in tests/test_tokenizer_oracle.py) rather than
   tensorflow-text's `BasicTokenizer`, whose NFKC case folding turns "straße" into "strasse"
   and full-width "ＡＢＣ" into "abc", ids no BERT checkpoint was trained with.
2. `FastWordpieceTokenizer` on each word -> word pieces (`##` continuation prefix).

Keeping the words as a ragged dimension gives whole-word masking and NER label alignment
the word boundaries for free:

    text       "Unaffable cats."
    words      ["unaffable", "cats", "."]
    pieces     [["un", "##aff", "##able"], ["cats"], ["."]]
    ids        [[11, 12, 13], [7], [4]]          (a hand-written vocabulary)
"""

from __future__ import annotations

from typing import Iterable, Sequence

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import bert_tokenizer as _tf_text_bert

from tfmask.text.readers import ReaderError
from tfmask.text.text_files import atomic_write, read_lines

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def load_vocabulary(path: str) -> list[str]:
    """Reads a `vocab.txt` (one token a line, id = line number); a file that is not UTF-8,
    is empty or lacks a special token raises `readers.ReaderError` (a `ValueError`) naming
    it."""
    vocab = read_lines(path)
    while vocab and vocab[-1] == "":
        vocab.pop()
    if not vocab:
        raise ReaderError(path, None, "empty vocabulary (one token a line expected)")
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ReaderError(path, None, f"vocabulary lacks special tokens {missing}")
    seen: dict[str, int] = {}
    for number, token in enumerate(vocab, start=1):
        if token in seen:
            raise ReaderError(path, number, f"token {token!r} repeats line {seen[token]}")
        seen[token] = number
    return vocab


def save_vocabulary(vocab: Sequence[str], path: str) -> None:
    """Writes `vocab.txt` atomically (a kill never leaves a shorter vocabulary behind)."""
    atomic_write(path, "".join(token + "\n" for token in vocab))


def learn_vocabulary(lines: tf.data.Dataset | Iterable[str], vocabulary_size: int,
                     lower_case: bool = True) -> list[str]:
    """Learns a WordPiece vocabulary with tensorflow-text's BERT vocabulary learner.

    Args:
      lines: a `tf.data.Dataset` of scalar strings, or an iterable of strings.
      vocabulary_size: target size, special tokens included (the learner may return a few
        fewer tokens when the corpus is small).
      lower_case: lower-case and strip accents before learning (an "uncased" vocabulary).

    Returns:
      The vocabulary: `SPECIAL_TOKENS` first (so `[PAD]` is id 0), then learned tokens.
    """
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as learner

    if not isinstance(lines, tf.data.Dataset):
        lines = tf.data.Dataset.from_tensor_slices(tf.constant(list(lines), tf.string))
    vocab = learner.bert_vocab_from_dataset(
        lines.batch(1024).prefetch(2),
        vocab_size=vocabulary_size,
        reserved_tokens=list(SPECIAL_TOKENS),
        bert_tokenizer_params={"lower_case": lower_case},
        learn_params={},
    )
    return list(vocab)


def basic_split(text: tf.Tensor, lower_case: bool = True) -> tf.RaggedTensor:
    """[batch] strings -> [batch, (words)] strings, as BERT's basic tokenizer splits them."""
    # Deleted before any normalisation: ICU normalisation stops at a NUL byte.
    text = tf.strings.regex_replace(text, r"[\t\n\r]|\p{Zs}", " ")
    text = tf.strings.regex_replace(text, r"\p{Cc}|\p{Cf}|\x{FFFD}", "")
    if lower_case:
        text = tf.strings.lower(text, encoding="utf-8")
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    return tf_text.regex_split(text, _tf_text_bert._DELIM_REGEX_PATTERN,
                               _tf_text_bert._KEEP_DELIM_NO_WHITESPACE_PATTERN)


class WordPieceTokenizer(tf.Module):
    """Strings -> word pieces, entirely with TensorFlow ops (usable inside `tf.data.map`).

    Args:
      vocab: list of tokens; id = index. Must contain `SPECIAL_TOKENS`.
      lower_case: whether the vocabulary is uncased (lower-case, strip accents).

    Example:
      >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi", "##s"])
      >>> tok.tokenize_words(["His hi"])  # [batch, words, pieces]
      <tf.RaggedTensor [[[5, 6], [5]]]>
    """

    def __init__(self, vocab: Sequence[str], lower_case: bool = True, name=None):
        super().__init__(name=name)
        self.vocab = list(vocab)
        self.lower_case = lower_case
        index = {t: i for i, t in enumerate(self.vocab)}
        missing = [t for t in SPECIAL_TOKENS if t not in index]
        if missing:
            raise ValueError(f"vocabulary lacks special tokens {missing}")
        (self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id,
         self.mask_token_id) = (index[t] for t in SPECIAL_TOKENS)
        # Ids a masker may never select and a random replacement may never produce: the five
        # specials plus BERT's "[unused*]" placeholders when the vocabulary has them.
        self.special_ids = sorted(
            {index[t] for t in SPECIAL_TOKENS}
            | {i for i, t in enumerate(self.vocab) if t.startswith("[unused")})
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab, suffix_indicator="##", unknown_token=UNK,
            no_pretokenization=True, token_out_type=tf.int32)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def from_file(cls, path: str, lower_case: bool = True) -> "WordPieceTokenizer":
        return cls(load_vocabulary(path), lower_case=lower_case)

    def split_words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings -> [batch, (words)] strings (BERT's basic tokenizer)."""
        return basic_split(text, self.lower_case)

    def tokenize_words(self, text) -> tf.RaggedTensor:
        """[batch] strings -> [batch, (words), (pieces)] int32 ids."""
        text = tf.convert_to_tensor(text, tf.string)
        return self._wordpiece.tokenize(self.split_words(text))

    def pieces_and_word_starts(self, text) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """[batch] strings -> ([batch, (pieces)] int32 ids, [batch, (pieces)] bool).

        `word_starts` is True on the first piece of every word; whole-word masking rebuilds
        word ids from it after sequences have been packed.
        """
        ids = self.tokenize_words(text)  # [B, (W), (P)]
        position = tf.ragged.range(ids.values.row_lengths())  # [(B*W), (P)] index in word
        ids_flat = ids.merge_dims(1, 2)  # [B, (pieces)]
        word_starts = tf.RaggedTensor.from_row_splits(
            tf.equal(position.flat_values, 0), ids_flat.row_splits)
        return ids_flat, word_starts

    def detokenize(self, ids) -> tf.Tensor:
        """[batch, (pieces)] ids -> [batch] strings (pieces joined, `##` merged)."""
        tokens = tf.gather(tf.constant(self.vocab), ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")
