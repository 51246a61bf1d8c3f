"""Tests for the embedded default data (the `tfmask.demo` package)."""

from __future__ import annotations

import ast
import collections
import csv
import random
import re
import time
from pathlib import Path

import pytest

from tfmask import demo

ENTITY_TYPES = {"PER", "LOC", "ORG", "MISC"}
TAGS = {"O"} | {f"{p}-{t}" for p in "BI" for t in ENTITY_TYPES}


def assert_valid_iob2(tags: list[str]) -> None:
    """Every I-X must follow B-X or I-X of the same type."""
    prev = "O"
    for tag in tags:
        assert tag in TAGS, tag
        if tag.startswith("I-"):
            assert prev in (f"B-{tag[2:]}", tag), (prev, tag, tags)
        prev = tag


def read_conll(path: Path) -> list[tuple[list[str], list[str], list[str], list[str]]]:
    """Parse a CoNLL-2003 file back into (words, pos, chunks, tags) per sentence."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "-DOCSTART- -X- -X- O"
    assert lines[1] == ""
    sentences, current = [], []
    for line in lines[2:]:
        if not line:
            if current:
                sentences.append(tuple(map(list, zip(*current))))
                current = []
            continue
        fields = line.split(" ")
        assert len(fields) == 4, line
        current.append(fields)
    if current:
        sentences.append(tuple(map(list, zip(*current))))
    return sentences


@pytest.fixture(scope="module")
def all_files(tmp_path_factory) -> dict:
    return demo.write_all(tmp_path_factory.mktemp("embedded"), seed=0)


# --- corpus -----------------------------------------------------------------


def test_corpus_is_deterministic_per_seed():
    a = demo.corpus_documents(seed=0, num_documents=50)
    assert a == demo.corpus_documents(seed=0, num_documents=50)
    assert a != demo.corpus_documents(seed=1, num_documents=50)


def test_documents_have_3_to_12_clean_sentences():
    docs = demo.corpus_documents(seed=3, num_documents=200)
    assert len(docs) == 200
    for doc in docs:
        assert 3 <= len(doc) <= 12
        for sentence in doc:
            assert sentence == " ".join(sentence.split()), repr(sentence)
            assert sentence[0].isupper() or sentence[0] == '"', sentence
            assert sentence.endswith(" ."), sentence


def test_write_corpus_files_sizes_and_blank_line_separation(all_files):
    corpus_dir = Path(all_files["corpus_dir"])
    paths = sorted(corpus_dir.glob("corpus_*.txt"))
    assert [p.name for p in paths] == [f"corpus_{i:02d}.txt" for i in range(4)]
    total = sum(p.stat().st_size for p in paths)
    assert 150_000 <= total <= 400_000, total

    num_docs = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "\n\n\n" not in text
        assert text.endswith("\n") and not text.endswith("\n\n")
        for block in text.rstrip("\n").split("\n\n"):
            lines = block.split("\n")
            assert 3 <= len(lines) <= 12
            assert all(line.strip() for line in lines)
            num_docs += 1
    assert num_docs == 600


def test_write_corpus_returns_sorted_paths(tmp_path):
    paths = demo.write_corpus(tmp_path / "new" / "dir", seed=5, num_files=3, num_documents=30)
    assert paths == sorted(paths)
    assert len(paths) == 3
    assert all(Path(p).is_file() for p in paths)
    blocks = [b for p in paths for b in Path(p).read_text().rstrip("\n").split("\n\n")]
    assert blocks == ["\n".join(d) for d in demo.corpus_documents(5, 30)]


def test_corpus_vocabulary_is_rich_but_small():
    docs = demo.corpus_documents()
    vocab = {w for doc in docs for s in doc for w in s.split()}
    assert 1500 <= len(vocab) <= 3000, len(vocab)


def test_corpus_facts_are_consistent():
    """A person named as chief executive always leads the same company."""
    employer = collections.defaultdict(set)
    pattern = re.compile(r"^(\w+ \w+) , the chief executive of (\w+ \w+) ,")
    for doc in demo.corpus_documents():
        for sentence in doc:
            m = pattern.match(sentence)
            if m:
                employer[m.group(1)].add(m.group(2))
    assert employer, "expected some chief executive sentences"
    assert all(len(orgs) == 1 for orgs in employer.values()), employer


def test_corpus_uses_agreement_and_tenses():
    text = "\n".join(s for d in demo.corpus_documents() for s in d)
    assert re.search(r"\ban [AEIOUaeiou]", text)
    assert not re.search(r"\ba [aeio]", text)  # "a" before a vowel is always fixed
    assert " will " in text and " was " in text and " is " in text
    # Counts agree with their nouns.
    assert re.search(r"\bone (year|hour)\b", text)
    assert re.search(r"\b(two|three) (years|hours)\b", text)
    assert not re.search(r"\bone (years|hours)\b", text)
    assert not re.search(r"\b(two|three|four) (year|hour)\b", text)


# --- NER --------------------------------------------------------------------


def test_ner_sentences_deterministic_and_well_formed():
    sents = demo.ner_sentences(seed=0, num_sentences=300)
    assert sents == demo.ner_sentences(seed=0, num_sentences=300)
    assert sents != demo.ner_sentences(seed=1, num_sentences=300)
    assert len(sents) == 300
    types, multiword, entities = collections.Counter(), 0, 0
    for words, tags in sents:
        assert len(words) == len(tags) > 0
        assert_valid_iob2(tags)
        entities += sum(t.startswith("B-") for t in tags)
        multiword += sum(t.startswith("I-") for t in tags) > 0
        types.update(t[2:] for t in tags if t.startswith("B-"))
    assert set(types) == ENTITY_TYPES
    assert entities / len(sents) >= 1.5
    assert multiword / len(sents) >= 0.3


def test_conll_output_parses_back(all_files):
    train = read_conll(Path(all_files["ner_train"]))
    valid = read_conll(Path(all_files["ner_valid"]))
    assert len(train) == 2000 and len(valid) == 400
    for words, pos, chunks, tags in train + valid:
        assert len(words) == len(pos) == len(chunks) == len(tags)
        assert_valid_iob2(tags)
        assert all(c == "O" or re.fullmatch(r"[BI]-(NP|VP|PP)", c) for c in chunks)
        for word, p, tag in zip(words, pos, tags):
            if tag != "O":
                assert p == "NNP"
            if word == ".":
                assert p == "."


def test_write_conll_round_trip(tmp_path):
    sents = demo.ner_sentences(seed=9, num_sentences=25)
    path = tmp_path / "sub" / "x.txt"
    demo.write_conll(path, sents)
    parsed = read_conll(path)
    assert [(w, t) for w, _, _, t in parsed] == [(list(w), list(t)) for w, t in sents]


def test_ner_train_and_valid_differ(all_files):
    train = read_conll(Path(all_files["ner_train"]))
    valid = read_conll(Path(all_files["ner_valid"]))
    assert train[:400] != valid
    valid_sentences = {" ".join(w) for w, *_ in valid}
    train_sentences = {" ".join(w) for w, *_ in train}
    # Templates repeat, so some overlap is expected, but not wholesale copies.
    assert len(valid_sentences - train_sentences) > len(valid_sentences) // 2


# --- sentiment --------------------------------------------------------------


def test_sentiment_balanced_and_labelled():
    examples = demo.sentiment_examples()
    assert len(examples) == 2000
    labels = [label for _, label in examples]
    assert set(labels) == {0, 1}
    assert 0.4 <= sum(labels) / len(labels) <= 0.6
    assert examples == demo.sentiment_examples()
    assert examples != demo.sentiment_examples(seed=1)
    for text, _ in examples:
        assert "\t" not in text and "\n" not in text
        assert text == " ".join(text.split())


def test_sentiment_needs_more_than_keywords():
    examples = demo.sentiment_examples()
    by_label = {0: [t for t, l in examples if l == 0], 1: [t for t, l in examples if l == 1]}
    # Negation appears in both classes ("not good" -> 0, "not bad" -> 1) ...
    assert any(re.search(r"\bnot (bad|awful|terrible|dull|poor)\b", t) for t in by_label[1])
    assert any(re.search(r"\bnot (very )?(good|great|excellent)\b", t) for t in by_label[0])
    # ... and so does contrast, where the clause after "but" decides.
    assert sum(" , but " in t for t in by_label[0]) > 20
    assert sum(" , but " in t for t in by_label[1]) > 20
    # No single word is a perfect label predictor for a frequent word.
    counts = {lab: collections.Counter(w for t in ts for w in set(t.lower().split()))
              for lab, ts in by_label.items()}
    for word in ("not", "but", "the", "was", "although", "despite"):
        assert counts[0][word] > 0 and counts[1][word] > 0, word


def test_sentiment_tsv_like_sst2(all_files):
    path = Path(all_files["sentiment_train"])
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["sentence", "label"]
    assert len(rows) == 2001
    assert {r[1] for r in rows[1:]} == {"negative", "positive"}  # names, not ids
    assert all(len(r) == 2 for r in rows)


def test_sentiment_train_and_dev_differ(all_files):
    train = Path(all_files["sentiment_train"]).read_text().splitlines()[1:]
    dev = Path(all_files["sentiment_dev"]).read_text().splitlines()[1:]
    assert len(dev) == 400
    assert dev != train[:400]


# --- write_all and general properties ----------------------------------------


def test_write_all_returns_all_paths(all_files):
    assert set(all_files) == {"corpus_dir", "ner_train", "ner_valid",
                              "sentiment_train", "sentiment_dev", "pairs_train", "pairs_dev"}
    assert Path(all_files["corpus_dir"]).is_dir()
    for key in ("ner_train", "ner_valid", "sentiment_train", "sentiment_dev", "pairs_train",
                "pairs_dev"):
        assert Path(all_files[key]).is_file()


def test_write_all_is_deterministic(tmp_path):
    a = demo.write_all(tmp_path / "a", seed=2)
    b = demo.write_all(tmp_path / "b", seed=2)
    for key in ("ner_train", "sentiment_dev"):
        assert Path(a[key]).read_bytes() == Path(b[key]).read_bytes()


def test_global_random_state_untouched():
    random.seed(1234)
    state = random.getstate()
    demo.corpus_documents(num_documents=5)
    demo.ner_sentences(num_sentences=5)
    demo.sentiment_examples(num_examples=5)
    assert random.getstate() == state


def test_generation_of_defaults_is_fast():
    start = time.perf_counter()
    demo.corpus_documents()
    demo.ner_sentences(0, 2000)
    demo.ner_sentences(1, 400)
    demo.sentiment_examples(0, 2000)
    demo.sentiment_examples(1, 400)
    assert time.perf_counter() - start < 2.0


def test_package_uses_only_the_standard_library():
    """Every module of `tfmask.demo` imports the standard library and its own package only."""
    modules = sorted(Path(demo.__file__).parent.glob("*.py"))
    assert len(modules) > 1, modules
    imported = set()
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            # Imports inside the package itself are fine; anything else from tfmask is not.
            imported.update(n.split(".")[0] for n in names
                            if n != "tfmask.demo" and not n.startswith("tfmask.demo."))
    assert imported <= {"__future__", "functools", "os", "random", "re", "zlib",
                        "dataclasses", "typing"}, imported
