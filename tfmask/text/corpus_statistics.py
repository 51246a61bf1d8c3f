"""First passes over the training text for entity, keyword and PMI masking, and the lookup
tables the pipeline builds from them.

Each strategy reduces to a list that `ngrams.py` matches on packed batches, one file under
`RUN/masking/` each:

    entity   entities.txt              entity<TAB>count
    keyword  document_frequencies.txt  word<TAB>documents holding it (first line #documents<TAB>N)
    pmi      pmi_ngrams.txt            w1 w2 ...<TAB>count<TAB>PMI    (2 to 5 words)

- Only training text is read: held-out lines (`--eval-holdout`) are left out exactly as the
  pipelines leave them out, and an `--eval-corpus` is never read. A CoNLL corpus is read as
  its sentences (`corpus_formats.py`).
- Words are what the run's tokenizer splits (`WordPieceTokenizer.split_words`: lower-cased
  and accents stripped for an uncased vocabulary), so a listed text and its occurrences in a
  batch are the same word pieces.
- Entities, by the first source that applies: a gazetteer (one entity a line, blank lines and
  lines starting with `#` skipped); the entity spans of a CoNLL corpus's NER tags (count =
  occurrences in the training sentences); or maximal runs of capitalised words that do not
  touch the start of a sentence (line start, or after `.`, `!`, `?`, `:`, `-`), seen at
  least `entity_min_count` times, lone one-letter words ("I") and lone words written at least
  as often in lower case ("US" and "us": the uncased match would take both) aside. Runs of
  more than `entity_max_words` words are dropped. A run found mid-sentence is matched
  everywhere, at sentence starts too.
- Documents (keyword): blank-line-separated blocks of lines, a file's end ending one too; in
  a file without a blank line between two lines of text (a one-line file), each line is a
  document; a TFDS example is a document; a CoNLL corpus's documents end at `-DOCSTART-`.
  IDF = ln((1 + N) / (1 + df)) for N documents: words in nearly every document (the, a, .)
  get nearly 0 and are then almost never chosen while others fill the budget.
- PMI of an n-gram x of n >= 2 words seen at least `pmi_min_count` times: the minimum over
  its segmentations into two or more contiguous parts of log p(x) / prod p(part), with
  p(y) = count(y) / (words in the corpus); n-grams stop at line ends and contain no word
  without a letter or digit (punctuation). The `pmi_max_ngrams` highest are kept.

Files are computed once, by the chief, and reused when the run resumes (`prepare`); a run with
other settings is another run directory (the configuration is part of `config.json`).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time

import numpy as np
import tensorflow as tf

from tfmask.config import DataConfig, MaskingConfig, parse_masking_strategy
from tfmask.text import corpus_formats, ngrams
from tfmask.text.text_files import atomic_write

FOLDER = "masking"
ENTITIES = "entities.txt"
DOCUMENT_FREQUENCIES = "document_frequencies.txt"
PMI_NGRAMS = "pmi_ngrams.txt"
#: strategy -> the file it reads.
FILES = {"entity": ENTITIES, "keyword": DOCUMENT_FREQUENCIES, "pmi": PMI_NGRAMS}
#: The longest PMI n-gram, in words.
PMI_MAX_WORDS = 5
_BATCH = 2048
# Words after which a sentence starts (news leads: "AP - A new ...", "News: The ...").
_SENTENCE_ENDS = {".", "!", "?", ":", "-"}
_OPENERS = {'"', "'", "(", "[", "`", "``"}


def needed_files(masking: MaskingConfig) -> list[str]:
    """The statistics files the strategy (or each strategy of a mixture) reads."""
    names = [name for name, _ in parse_masking_strategy(masking.strategy)]
    return [FILES[name] for name in names if name in FILES]


# ----------------------------------------------------------------------------------------------
# Reading the training text
# ----------------------------------------------------------------------------------------------
def corpus_is_conll(data: DataConfig) -> bool:
    """Whether the training corpus is read as CoNLL files (TFDS text never is)."""
    if data.tfds:
        return False
    from tfmask.text.pretraining_data import expand_globs

    return corpus_formats.is_conll_corpus(expand_globs(data.corpus))


def training_text(data: DataConfig, files: list[str] | None = None) -> tf.data.Dataset:
    """The training lines the pipeline reads (of `files` only, when given), with an empty line
    at every document end."""
    from tfmask.text import pretraining_data as pd

    if data.tfds:
        lines = pd.tfds_lines(data.tfds, data.tfds_text_key, data.tfds_data_dir)
    else:
        conll = corpus_formats.is_conll_corpus(pd.expand_globs(data.corpus))
        lines = tf.data.Dataset.from_tensor_slices(files or pd.expand_globs(data.corpus))
        lines = lines.flat_map(lambda path: pd.file_lines(path, conll))
    if data.skip_bad_lines:
        lines = pd.good_lines(lines)
    if data.holdout_active:
        lines = lines.filter(pd.holdout_filter(data.eval_holdout, keep_heldout=False))
    return lines


def _word_lines(data: DataConfig, split, files: list[str] | None = None):
    """Yields every training line (of `files`, when given) as a list of words (str); `[]`
    marks a document end (an empty line, or one with no word at all: the pipeline's packing
    ends a document there too)."""
    # Split eagerly, batch by batch: no graph to trace, which dominates on small corpora.
    for lines in training_text(data, files).batch(_BATCH):
        for row in split(lines).to_list():
            yield [w.decode("utf-8") for w in row]


def _has_blank_line(path: str) -> bool:
    """Whether a blank line separates two lines of text in the file (else: one-line file)."""
    with open(path, "rb") as fh:
        return re.search(rb"\S[^\n]*\n[ \t\r]*\n[ \t\r]*\S", fh.read()) is not None


# ----------------------------------------------------------------------------------------------
# Entities
# ----------------------------------------------------------------------------------------------
def read_gazetteer(path: str) -> list[str]:
    """One entity a line; blank lines and `#` comments skipped; duplicates once, in order."""
    from tfmask.text.text_files import read_lines

    entries = (line.strip() for line in read_lines(path))
    return list(dict.fromkeys(e for e in entries if e and not e.startswith("#")))


def conll_entities(data: DataConfig) -> dict[str, int]:
    """Entity spans (words joined by spaces) of a CoNLL corpus's training sentences, with how
    often each occurs; held-out sentences (by the pipeline's hash of the sentence line) are
    left out."""
    from tfmask.text import pretraining_data as pd
    from tfmask.text.labels import entity_spans
    from tfmask.text.readers import read_conll

    counts: dict[str, int] = {}
    for path in pd.expand_globs(data.corpus):
        sentences = read_conll(path)
        keep = np.ones(len(sentences), bool)
        if data.holdout_active and sentences:
            lines = tf.constant([" ".join(s.words) for s in sentences])
            keep = pd.holdout_filter(data.eval_holdout, keep_heldout=False)(lines).numpy()
        for sentence, kept in zip(sentences, keep):
            if not kept:
                continue
            for _, start, end in entity_spans(sentence.tags):
                text = " ".join(sentence.words[start:end])
                counts[text] = counts.get(text, 0) + 1
    return counts


def capitalised_runs(lines) -> dict[str, int]:
    """Maximal runs of capitalised words that do not touch a sentence start, with counts.

    `lines`: an iterable of word lists (case kept). A sentence starts at a line start and
    after `.`, `!`, `?`, `:` or `-` (opening quotes and brackets after them still count as the
    start); a lone one-letter word ("I", the "U" of "U.S.") is not an entity, nor is a lone
    word written in lower case at least as often as capitalised away from sentence starts
    ("US" and "us", "May" and "may": an uncased vocabulary would match them everywhere).
    """
    counts: dict[str, int] = {}
    lower: dict[str, int] = {}  # lower-case occurrences of words away from sentence starts
    for words in lines:
        run: list[str] = []
        run_at_start = False
        at_start = True
        for word in [*words, "."]:  # a final "." closes the last run
            capital = word[:1].isalpha() and word[:1].isupper()
            if capital:
                if not run:
                    run_at_start = at_start
                run.append(word)
            else:
                if run and not run_at_start and not (len(run) == 1 and len(run[0]) == 1):
                    text = " ".join(run)
                    counts[text] = counts.get(text, 0) + 1
                run = []
                if not at_start and word[:1].isalpha():
                    lower[word] = lower.get(word, 0) + 1
            at_start = word in _SENTENCE_ENDS or (at_start and word in _OPENERS)
    return {text: c for text, c in counts.items()
            if " " in text or c > lower.get(text.lower(), 0)}


def entity_list(data: DataConfig, masking: MaskingConfig) -> tuple[list[tuple[str, int]], str]:
    """`([(entity, count)], source)`: the entities by the first source that applies (see the
    module docstring), most frequent first."""
    from tfmask.text.tokenization import basic_split

    if masking.gazetteer:
        entities = read_gazetteer(masking.gazetteer)
        return [(e, 1) for e in entities], f"--gazetteer {masking.gazetteer}"
    if corpus_is_conll(data):
        counts, source = conll_entities(data), "the CoNLL corpus's NER tags"
    else:
        counts = capitalised_runs(_word_lines(data, lambda b: basic_split(b, lower_case=False)))
        counts = {e: c for e, c in counts.items() if c >= masking.entity_min_count}
        source = (f"capitalised words of the corpus (runs seen >= {masking.entity_min_count} "
                  "times)")
    counts = {e: c for e, c in counts.items() if len(e.split()) <= masking.entity_max_words}
    return sorted(counts.items(), key=lambda item: (-item[1], item[0])), source


# ----------------------------------------------------------------------------------------------
# Document frequencies (keyword) and PMI n-grams
# ----------------------------------------------------------------------------------------------
def _indexed_words(data: DataConfig, tokenizer):
    """The training words as integer ids: `(words [T] int64, line [T] int64, document [T]
    int64, vocabulary list)`, documents as the module docstring says."""
    index: dict[str, int] = {}
    words, line_of, doc_of = [], [], []
    line = document = 0
    if data.tfds:
        sources = [(None, False)]  # an example is a document
    else:
        files = _corpus_files(data)
        conll = corpus_formats.is_conll_corpus(files)
        sources = [([f], not conll and not _has_blank_line(f)) for f in files]
    for files, one_line in sources:
        held = False  # words since the last document end
        for row in _word_lines(data, tokenizer.split_words, files):
            if not row or one_line:  # a document end (consecutive ones end one document)
                document += held
                held = False
                if not row:
                    continue
            words.extend(index.setdefault(w, len(index)) for w in row)
            line_of.extend([line] * len(row))
            doc_of.extend([document] * len(row))
            line += 1
            held = True
        document += held
    return (np.array(words, np.int64), np.array(line_of, np.int64),
            np.array(doc_of, np.int64), list(index))


def _corpus_files(data: DataConfig) -> list[str]:
    from tfmask.text.pretraining_data import expand_globs

    return expand_globs(data.corpus)


def document_frequencies(words, doc_of, vocabulary) -> tuple[dict[str, int], int]:
    """`({word: number of documents holding it}, number of documents)`."""
    if not len(words):
        return {}, 0
    pairs = np.unique(doc_of * len(vocabulary) + words)
    df = np.bincount(pairs % len(vocabulary), minlength=len(vocabulary))
    return {w: int(c) for w, c in zip(vocabulary, df) if c}, int(doc_of.max()) + 1


def _segmentations(n: int):
    """Every split of n words into >= 2 contiguous parts, as lists of (start, end)."""
    for cuts in range(1, n):
        for points in itertools.combinations(range(1, n), cuts):
            bounds = (0, *points, n)
            yield list(zip(bounds[:-1], bounds[1:]))


def pmi_ngrams(words, line_of, vocabulary, min_count: int, max_ngrams: int,
               max_words: int = PMI_MAX_WORDS) -> list[tuple[str, int, float]]:
    """The `max_ngrams` n-grams (2 <= n <= `max_words`) of highest PMI (see the module
    docstring): `[(words joined by spaces, count, PMI)]`, highest first."""
    total = len(words)
    if total == 0:
        return []
    alnum = np.array([any(ch.isalnum() for ch in w) for w in vocabulary], bool)
    # codes[n][i]: a dense id of the n-gram at position i (-1 where it crosses a line end);
    # counts[n][id]: how often it occurs.
    codes, counts = {1: words}, {1: np.bincount(words)}
    size = len(vocabulary)
    for n in range(2, max_words + 1):
        prev = codes[n - 1]
        valid = np.zeros(total, bool)
        head = total - n + 1
        valid[:head] = (line_of[n - 1:] == line_of[:head]) & (prev[:head] >= 0)
        last = np.concatenate([words[n - 1:], np.zeros(n - 1, np.int64)])  # word i + n - 1
        pair = np.where(valid, prev * size + last, -1)
        unique, inverse = np.unique(pair[valid], return_inverse=True)
        code = np.full(total, -1, np.int64)
        code[valid] = inverse
        codes[n], counts[n] = code, np.bincount(inverse, minlength=len(unique))
        size = max(size, len(unique))  # ids stay below this for the next length
    results = []
    log_total = math.log(total)
    for n in range(2, max_words + 1):
        code = codes[n]
        ids, first = np.unique(code, return_index=True)
        keep = (ids >= 0)
        ids, first = ids[keep], first[keep]
        frequent = counts[n][ids] >= min_count
        ids, first = ids[frequent], first[frequent]
        if not len(ids):
            continue
        clean = np.all([alnum[words[first + j]] for j in range(n)], axis=0)
        ids, first = ids[clean], first[clean]
        log_joint = np.log(counts[n][ids]) - log_total
        pmi = np.full(len(ids), np.inf)
        for parts in _segmentations(n):
            log_parts = sum(np.log(counts[b - a][codes[b - a][first + a]]) - log_total
                            for a, b in parts)
            pmi = np.minimum(pmi, log_joint - log_parts)
        for i, c, value in zip(first, counts[n][ids], pmi):
            text = " ".join(vocabulary[w] for w in words[i:i + n])
            results.append((text, int(c), float(value)))
    results.sort(key=lambda r: (-r[2], -r[1], r[0]))
    return results[:max_ngrams]


# ----------------------------------------------------------------------------------------------
# Files: computed once (by the chief), read back on resume
# ----------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    return " ".join(text.split())  # no tab or newline inside a field


def compute(name: str, data: DataConfig, masking: MaskingConfig, tokenizer,
            cache: dict | None = None) -> tuple[str, str]:
    """The text of statistics file `name` and a one-line summary of it. `cache` keeps the
    indexed words between the keyword and PMI passes of one mixture."""
    cache = {} if cache is None else cache
    if name == ENTITIES:
        entities, source = entity_list(data, masking)
        text = "".join(f"{_clean(e)}\t{c}\n" for e, c in entities)
        none = "" if entities else " (none: entity masking masks whole words only)"
        return text, f"{len(entities)} entities from {source}{none}"
    if "words" not in cache:
        cache["words"] = _indexed_words(data, tokenizer)
    words, line_of, doc_of, vocabulary = cache["words"]
    if name == DOCUMENT_FREQUENCIES:
        df, documents = document_frequencies(words, doc_of, vocabulary)
        rows = sorted(df.items(), key=lambda item: (-item[1], item[0]))
        text = f"#documents\t{documents}\n" + "".join(f"{w}\t{c}\n" for w, c in rows)
        return text, f"document frequencies of {len(df)} words over {documents} documents"
    if name == PMI_NGRAMS:
        rows = pmi_ngrams(words, line_of, vocabulary, masking.pmi_min_count,
                          masking.pmi_max_ngrams)
        text = "".join(f"{g}\t{c}\t{p:.4f}\n" for g, c, p in rows)
        none = "" if rows else " (none: PMI masking masks whole words only)"
        return text, (f"{len(rows)} n-grams of highest PMI over {len(words)} words (count >= "
                      f"{masking.pmi_min_count}){none}")
    raise ValueError(f"unknown statistics file {name!r}")


def prepare(data: DataConfig, masking: MaskingConfig, tokenizer, run_dir: str | None = None
            ) -> dict[str, str]:
    """`{file name: text}` of the statistics the strategy needs: read from
    `run_dir/masking/` when there (a resumed run), else computed from the training text (and
    written there when `run_dir` is given). Prints a line per file computed."""
    contents, cache = {}, {}
    for name in needed_files(masking):
        path = os.path.join(run_dir, FOLDER, name) if run_dir else None
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                contents[name] = fh.read()
            continue
        start = time.time()
        contents[name], summary = compute(name, data, masking, tokenizer, cache)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, contents[name])
        where = f" -> {path}" if path else ""
        print(f"Masking statistics: {summary} ({time.time() - start:.1f} s){where}", flush=True)
    return contents


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def idf(documents: int, df) -> np.ndarray:
    """Smoothed inverse document frequency, ln((1 + N) / (1 + df)): 0 for a word in every
    document, ln(1 + N) for one in none."""
    return np.log((1.0 + documents) / (1.0 + np.asarray(df, np.float64)))


class MaskingTables:
    """The lookup tables of the strategies `masking` names, built from `prepare`'s texts, and
    `annotate`, which adds what those strategies read to a packed batch.

    Args:
      contents: `{file name: text}` from `prepare`.
      tokenizer: the run's `WordPieceTokenizer` (lists are matched as its word pieces).
      masking: the `MaskingConfig`.
    """

    def __init__(self, contents: dict[str, str], tokenizer, masking: MaskingConfig):
        self.masking = masking
        self.entities = self.idf = self.pmi = None
        self.default_idf = 0.0
        if ENTITIES in contents:
            texts = [row[0] for row in _rows(contents[ENTITIES])]
            self.entities = self._ngram_table(tokenizer, texts, masking.entity_max_words)
        if PMI_NGRAMS in contents:
            texts = [row[0] for row in _rows(contents[PMI_NGRAMS])]
            self.pmi = self._ngram_table(tokenizer, texts, PMI_MAX_WORDS)
        if DOCUMENT_FREQUENCIES in contents:
            text = contents[DOCUMENT_FREQUENCIES]
            header = text.split("\n", 1)[0].split("\t")
            documents = int(header[1]) if header[0] == "#documents" else 0
            rows = _rows(text)
            keys, num_words = ngrams.text_keys(tokenizer, [r[0] for r in rows])
            values = idf(documents, [int(r[1]) for r in rows])
            one = num_words == 1
            self.default_idf = float(idf(documents, 0))  # a word no document holds
            self.idf = ngrams.lookup_table(keys[one], values[one], self.default_idf)

    @staticmethod
    def _ngram_table(tokenizer, texts, max_words):
        keys, num_words = ngrams.text_keys(tokenizer, texts)
        keep = (num_words >= 1) & (num_words <= max_words)
        return ngrams.lookup_table(keys[keep], np.ones(int(keep.sum())), 0.0)

    def annotate(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """`features` (`token_ids`, `word_ids` [B, L]) plus the keys the strategies read:
        `entity_group_ids` and `entity_priority`, `keyword_priority`, `pmi_group_ids`."""
        from tfmask.text import masking as m

        out = dict(features)
        token_ids, word_ids = features["token_ids"], features["word_ids"]
        if self.entities is not None:
            out["entity_group_ids"], out["entity_priority"] = m.entity_units(
                token_ids, word_ids, self.entities, self.masking.entity_max_words,
                self.masking.entity_priority)
        if self.idf is not None:
            out["keyword_priority"] = m.keyword_priority(
                token_ids, word_ids, self.idf, self.masking.keyword_strength)
        if self.pmi is not None:
            out["pmi_group_ids"] = m.pmi_units(token_ids, word_ids, self.pmi, PMI_MAX_WORDS)
        return out


def masking_tables(data: DataConfig, masking: MaskingConfig, tokenizer,
                   contents: dict[str, str] | None = None) -> MaskingTables | None:
    """The `MaskingTables` a config needs (None when its strategies need none), from
    `contents` (`prepare`'s) or computed now from the training text."""
    if not needed_files(masking):
        return None
    if contents is None:
        contents = prepare(data, masking, tokenizer)
    return MaskingTables(contents, tokenizer, masking)
