"""Tag schemes, entity spans and label lists: the one place that knows what a NER tag means.

Plain Python (no TensorFlow), used by the readers (scheme detection, conversion to IOB2, the
label list of a run), by the metrics (entities as conlleval reads them) and by the export
(`label_codes`: the prefix/type tables its in-graph entity reader works on).

Chunks are read with the rules of conlleval.pl, which seqeval's default mode (`mode=None`)
reproduces, so entity scores built on `entity_spans` are the ones papers report for
CoNLL-2003:

    tags        B-PER  I-PER  O  I-LOC  I-ORG  B-ORG  E-MISC  S-MISC
    chunks      [PER 0:2]        [LOC 3:4] [ORG 4:5] [ORG 5:6] [MISC 6:7] [MISC 7:8]

An `I-X` after `O` or after another type starts a chunk (it is not dropped); a type switch
ends one; `B-X` always starts one. IOBES tags (`E-`, `S-`) are read the same way, so spans of
IOB1, IOB2 and IOBES sequences are all conlleval's.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

#: Tag schemes a CoNLL file may be written in ("auto" detects it).
SCHEMES = ("auto", "IOB1", "IOB2", "IOBES")

#: Prefix codes of the in-graph entity reader (`label_codes`).
PREFIX_CODES = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}

TAG = re.compile(r"O|[BIES]-\S+")


def split_tag(tag: str) -> tuple[str, str]:
    """`"B-PER"` -> `("B", "PER")`, `"O"` -> `("O", "")`; other strings raise `ValueError`."""
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise ValueError(f"{tag!r} is not an entity tag: expected O, B-X, I-X, E-X or S-X")
    return (tag, "") if tag == "O" else (tag[0], tag[2:])


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk ended between the previous and the current word (conlleval's rules)."""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk starts at the current word (conlleval's rules)."""
    if tag in ("B", "S"):
        return True
    # An I- or E- that cannot continue the previous word's chunk opens a new one.
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one tag sequence, read with conlleval's (seqeval's default) chunk rules.

    Args:
      tags: one sentence's tags, each `"O"` or `"{B,I,E,S}-TYPE"` (IOB1, IOB2 or IOBES).

    Returns:
      `[(type, start, end)]` in order, `end` exclusive (the words are `words[start:end]`;
      seqeval's `get_entities` gives `end - 1`).

    Raises:
      ValueError: a tag is not O / B-X / I-X / E-X / S-X.

    Example:
      >>> entity_spans(["O", "I-PER", "I-PER", "B-PER", "I-LOC"])
      [('PER', 1, 3), ('PER', 3, 4), ('LOC', 4, 5)]
    """
    spans = []
    prev_tag, prev_type, begin = "O", "", 0
    # A trailing "O" closes a chunk that runs to the end of the sentence.
    for i, tag in enumerate([*tags, "O"]):
        tag, type_ = split_tag(tag)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            spans.append((prev_type, begin, i))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return spans


def _starts_chunk_with_i(tags: Sequence[str], i: int) -> bool:
    """Whether `tags[i]` is an `I-X` that cannot continue the previous word's chunk."""
    if not tags[i].startswith("I-"):
        return False
    if i == 0 or tags[i - 1] == "O":
        return True
    return tags[i - 1][2:] != tags[i][2:]


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Which tag scheme a corpus uses: `"IOBES"`, `"IOB1"` or `"IOB2"`.

    The rule, applied to the whole corpus (a file is written in one scheme):

    1. any `S-` or `E-` tag -> IOBES (neither IOB scheme has them);
    2. otherwise, any `I-X` that begins a chunk (first word, after `O`, or after a tag of
       another type) -> IOB1: IOB2 begins every chunk with `B-`, so only IOB1 explains it.
       IOB1 writes `B-X` only where a chunk directly follows another `X` chunk; a `B-X`
       elsewhere is tolerated, since it can only mean "a chunk starts here" in either scheme;
    3. otherwise IOB2. A corpus with no chunk-initial `I-` reads the same in IOB1 and IOB2,
       so the choice loses nothing.
    """
    iob1 = False
    for tags in tag_sequences:
        for i, tag in enumerate(tags):
            if tag[:2] in ("S-", "E-"):
                return "IOBES"
            iob1 = iob1 or _starts_chunk_with_i(tags, i)
    return "IOB1" if iob1 else "IOB2"


def scheme_error(tags: Sequence[str], scheme: str) -> tuple[int, str] | None:
    """`(index, message)` of the first tag that breaks `scheme`'s rules, or None.

    IOB2 and IOBES are checked strictly; IOB1 only excludes `E-`/`S-` (a `B-X` after `O` is
    unusual in IOB1 but unambiguous).
    """
    for i, tag in enumerate(tags):
        prefix, type_ = tag[:2], tag[2:]
        if scheme in ("IOB1", "IOB2") and prefix in ("E-", "S-"):
            return i, f"tag {tag!r} is not an {scheme} tag (E-/S- are IOBES)"
        if scheme == "IOB2" and _starts_chunk_with_i(tags, i):
            before = f"follows {tags[i - 1]!r}" if i else "starts the sentence"
            return i, (f"tag {tag!r} {before}; in IOB2 an entity begins with B-{type_} "
                       f"(pass scheme='IOB1' or 'auto' for IOB1 files)")
        if scheme == "IOBES":
            prev = tags[i - 1] if i else "O"
            nxt = tags[i + 1] if i + 1 < len(tags) else "O"
            if prefix in ("I-", "E-") and prev not in (f"B-{type_}", f"I-{type_}"):
                return i, f"IOBES tag {tag!r} must follow B-{type_} or I-{type_}, not {prev!r}"
            if prefix in ("B-", "I-") and nxt not in (f"I-{type_}", f"E-{type_}"):
                return i, (f"IOBES tag {tag!r} must be followed by I-{type_} or E-{type_}, "
                           f"not {nxt!r}")
    return None


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 / IOB2 / IOBES tags -> IOB2 tags of the same (conlleval) entities."""
    out = ["O"] * len(tags)
    for type_, start, end in entity_spans(tags):
        out[start] = f"B-{type_}"
        out[start + 1:end] = [f"I-{type_}"] * (end - start - 1)
    return out


def entity_types(labels: Iterable[str]) -> list[str]:
    """Sorted entity types of IOB labels: `["O", "B-PER", "I-LOC"]` -> `["LOC", "PER"]`."""
    return sorted({label[2:] for label in labels if label != "O"})


def label_vocabulary(sentences: Iterable) -> list[str]:
    """The label list of a token classifier, learned from training sentences (IOB2 tags).

    `sentences` are `readers.Sentence`s (anything with `.tags` and `.line`).

    `"O"` first (id 0), then `B-T`, `I-T` for each entity type T in sorted order. `I-T` is
    included even if training never shows it, so every entity type can be predicted in full.

        tags {O, B-PER, I-PER, B-LOC}  ->  ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    """
    seen = set()
    for sentence in sentences:
        for tag in sentence.tags:
            if tag != "O" and not (tag[:2] in ("B-", "I-") and TAG.fullmatch(tag)):
                raise ValueError(f"tag {tag!r} (sentence at line {sentence.line}) is not IOB2")
            seen.add(tag)
    return ["O"] + [f"{p}-{t}" for t in entity_types(seen) for p in ("B", "I")]


def label_codes(labels: Sequence[str]) -> tuple[list[int], list[int], list[str]]:
    """Prefix code (`PREFIX_CODES`) and type index of each label, and the sorted type names.

        ["O", "B-LOC", "I-LOC", "B-PER"]  ->  [0, 1, 2, 1], [-1, 0, 0, 1], ["LOC", "PER"]
    """
    for label in labels:
        split_tag(label)  # raises on anything but O / B-X / I-X / E-X / S-X
    types = entity_types(labels)
    prefix = [PREFIX_CODES[label[0]] for label in labels]
    type_ids = [-1 if label == "O" else types.index(label[2:]) for label in labels]
    return prefix, type_ids, types
