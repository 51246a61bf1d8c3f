"""Tokenization: exact ids on the hand-written vocabulary, vocabulary learning and files."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import TINY_VOCAB, tiny_tokenizer
from tfmask.text.tokenization import (SPECIAL_TOKENS, WordPieceTokenizer, learn_vocabulary,
                                 load_vocabulary, save_vocabulary)

ID = {token: i for i, token in enumerate(TINY_VOCAB)}


def words(tokenizer, text):
    """One string -> [[piece ids of word 1], [piece ids of word 2], ...]."""
    return tokenizer.tokenize_words([text]).to_list()[0]


def ids(*tokens):
    return [ID[t] for t in tokens]


def test_special_ids_come_from_the_vocabulary():
    tok = tiny_tokenizer()
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert tok.special_ids == [0, 1, 2, 3, 4]
    assert tok.vocabulary_size == len(TINY_VOCAB)


def test_unused_placeholders_are_special():
    vocab = ["[unused0]"] + list(SPECIAL_TOKENS) + ["a", "[unused1]"]
    tok = WordPieceTokenizer(vocab)
    assert tok.pad_token_id == 1 and tok.mask_token_id == 5
    assert tok.special_ids == [0, 1, 2, 3, 4, 5, 7]


def test_lower_cases_and_splits_punctuation():
    tok = tiny_tokenizer()
    assert words(tok, "The cat sat on the MAT.") == [
        ids("the"), ids("cat"), ids("sat"), ids("on"), ids("the"), ids("mat"), ids(".")]
    # Punctuation splits words even without spaces.
    assert words(tok, "hello,world!") == [ids("hello"), ids(","), ids("world"), ids("!")]


def test_continuation_pieces():
    tok = tiny_tokenizer()
    assert words(tok, "Unaffable dogs") == [ids("un", "##aff", "##able"), ids("dog", "##s")]
    assert words(tok, "unaff") == [ids("un", "##aff")]


def test_unknown_words_become_one_unk():
    tok = tiny_tokenizer()
    # A whole word is [UNK] when it cannot be covered by pieces (not a partial match).
    assert words(tok, "zebra cat unaffz") == [[ID["[UNK]"]], ids("cat"), [ID["[UNK]"]]]


def test_accents_stripped_when_lower_case_and_kept_when_cased():
    uncased, cased = tiny_tokenizer(lower_case=True), tiny_tokenizer(lower_case=False)
    assert words(uncased, "Café CAFÉ") == [ids("cafe"), ids("cafe")]
    assert words(cased, "café") == [ids("café")]
    # Cased: no case folding, so capitalised words the vocabulary lacks are unknown.
    assert words(cased, "The cat") == [[ID["[UNK]"]], ids("cat")]


@pytest.mark.parametrize("text", ["", " ", "  \t \n "])
def test_empty_and_whitespace_give_no_pieces(text):
    tok = tiny_tokenizer()
    assert words(tok, text) == []
    pieces, starts = tok.pieces_and_word_starts([text])
    assert pieces.to_list() == [[]] and starts.to_list() == [[]]


def test_pieces_and_word_starts():
    tok = tiny_tokenizer()
    pieces, starts = tok.pieces_and_word_starts(["Unaffable dogs sat.", "", "the cat"])
    assert pieces.dtype == tf.int32 and starts.dtype == tf.bool
    assert pieces.to_list() == [ids("un", "##aff", "##able", "dog", "##s", "sat", "."), [],
                                ids("the", "cat")]
    assert starts.to_list() == [[True, False, False, True, False, True, True], [],
                                [True, True]]


def test_tokenizes_inside_a_dataset_map():
    tok = tiny_tokenizer()
    ds = tf.data.Dataset.from_tensor_slices(["the dogs", "", "un cat"]).batch(2).map(
        lambda text: tok.pieces_and_word_starts(text)[0])
    rows = [row for batch in ds for row in batch.to_list()]
    assert rows == [ids("the", "dog", "##s"), [], ids("un", "cat")]


def test_detokenize_merges_continuations():
    tok = tiny_tokenizer()
    pieces, _ = tok.pieces_and_word_starts(["Unaffable dogs sat."])
    assert tok.detokenize(pieces).numpy().tolist() == [b"unaffable dogs sat ."]


def test_learn_vocabulary_specials_first_and_no_unknowns():
    text = ["The quick brown fox jumps over the lazy dog.",
            "Unbelievable things happen, daily!",
            "Café au lait is tasty; the fox agrees."] * 10
    vocab = learn_vocabulary(text, vocabulary_size=200)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    learned = vocab[5:]
    assert learned and not set(learned) & set(SPECIAL_TOKENS)
    assert len(set(vocab)) == len(vocab)
    assert "cafe" in vocab and "café" not in vocab  # uncased: accents stripped
    tok = WordPieceTokenizer(vocab)
    pieces, _ = tok.pieces_and_word_starts(text[:3])
    assert tok.unk_token_id not in pieces.flat_values.numpy()
    assert tok.detokenize(pieces).numpy()[2] == b"cafe au lait is tasty ; the fox agrees ."


def test_learn_vocabulary_from_dataset():
    text = ["alpha beta gamma", "beta gamma delta"] * 20
    vocab = learn_vocabulary(tf.data.Dataset.from_tensor_slices(text), vocabulary_size=100)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert {"alpha", "beta", "gamma", "delta"} <= set(vocab)
    tok = WordPieceTokenizer(vocab)
    assert tok.unk_token_id not in tok.tokenize_words(text).flat_values.numpy()


def test_save_load_round_trip(tmp_path):
    path = str(tmp_path / "vocab.txt")
    save_vocabulary(TINY_VOCAB, path)
    assert load_vocabulary(path) == TINY_VOCAB
    tok = WordPieceTokenizer.from_file(path)
    np.testing.assert_array_equal(tok.tokenize_words(["Unaffable café"]).flat_values,
                                  ids("un", "##aff", "##able", "cafe"))


def test_load_tolerates_crlf_and_trailing_blank_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(("\r\n".join(TINY_VOCAB) + "\r\n\n\n").encode("utf-8"))
    assert load_vocabulary(str(path)) == TINY_VOCAB


def test_load_missing_special_tokens_names_the_file(tmp_path):
    path = tmp_path / "bad_vocab.txt"
    path.write_text("[PAD]\n[UNK]\nthe\ncat\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad_vocab.txt") as info:
        load_vocabulary(str(path))
    assert "[CLS]" in str(info.value) and "[MASK]" in str(info.value)


def test_tokenizer_rejects_vocab_without_specials():
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"])
