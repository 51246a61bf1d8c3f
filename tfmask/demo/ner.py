"""NER sentences from the news grammar, written as CoNLL-2003 files.

The entity tags come from the grammar itself (every slot filled with a name carries its type);
the part-of-speech and chunk columns are a coarse tagging from the grammar's own lexicon, there
so the files have CoNLL-2003's four columns:

    Ada NNP B-NP B-PER
    Brell NNP I-NP I-PER
    announced VBD B-VP O
"""

from __future__ import annotations

import functools
import os
import random
import re
from typing import Sequence

from tfmask.demo.corpus import generate_document
from tfmask.demo.lexicon import (
    CITY_KINDS, CITY_KNOWN, CIVIC, COLOURS, COST_ITEMS, DEAL_ADJ, HOBBIES, MONTHS, NUMBER_WORDS,
    SUBJECTS, TRAITS, VERBS, WEEKDAYS)
from tfmask.demo.world import build_world, derive_seed


@functools.lru_cache(maxsize=1)
def _pos_table() -> dict[str, str]:
    """A coarse word -> Penn tag table derived from the grammar's own lexicon."""
    table: dict[str, str] = {}

    def add(tag: str, words: str | Sequence[str]) -> None:
        for w in (words.split() if isinstance(words, str) else words):
            for part in w.split():
                table.setdefault(part.lower(), tag)

    add("DT", "the a an this these every each all several some no")
    add("NNP", MONTHS + WEEKDAYS)
    add("IN", "that in on at of for from with by about after before since as into over "
              "near between along across than until because like behind outside during "
              "through above under against despite although per")
    add("TO", "to")
    add("CC", "and but or yet")
    add("MD", "will would can could should")
    add("PRP", "he she it they we i you")
    add("PRP$", "his her its their our my your")
    add("WP", "who which")
    add("RP", "down off")
    add("RB", "not also still never very really up ago well earlier together twice "
              "fully whole almost always quite rather truly so extremely incredibly "
              "definitely too even far")
    add("POS", "'s")
    add("VBZ", "is has says makes remains takes lies")
    add("VBD", "was were had")
    add("VBP", "are have")
    # Participles that are not past forms of a verb in the verb table.
    add("VBN", "been founded booked explored needed sponsored funded underestimated")
    for base, (third, past) in VERBS.items():
        add("VBD", past)
        add("VBZ", third)
        add("VB", base)
    add("JJ", TRAITS + COLOURS + DEAL_ADJ +
        "many best largest new old main local large small good first second third fourth fifth "
        "sixth last next public proud heavy strong dense dry highest important "
        "similar favourite few hard whole spare honorary fine higher lighter faster "
        "busy quiet coastal medieval sandy double selling early other big".split())
    add("CD", NUMBER_WORDS)
    add("NN", [w for lst in (CIVIC, SUBJECTS, HOBBIES, COST_ITEMS, CITY_KINDS, CITY_KNOWN)
               for w in lst])
    return table


_NP_TAGS = {"DT", "JJ", "NN", "NNS", "NNP", "NNPS", "CD", "PRP", "PRP$", "POS"}
_VP_TAGS = {"MD", "VB", "VBD", "VBZ", "VBP", "VBN", "VBG", "RB", "TO"}


def _pos_tags(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    table = _pos_table()
    out: list[str] = []
    open_quote = False
    for i, (w, t) in enumerate(zip(words, tags)):
        lw = w.lower()
        if t != "O":
            pos = "NNP"
        elif w == "\"":
            # Penn style: opening `` and closing ''.
            open_quote = not open_quote
            pos = "``" if open_quote else "''"
        elif w in {".", ",", ":", "-"}:
            pos = {".": ".", ",": ",", ":": ":", "-": ":"}[w]
        elif re.fullmatch(r"-?[\d.,]+", w):
            pos = "CD"
        elif lw in table:
            pos = table[lw]
            # A past form straight after "be"/"have" is a participle.
            if pos == "VBD" and i > 0 and words[i - 1].lower() in {
                    "was", "were", "is", "are", "be", "been", "has", "have", "had"}:
                pos = "VBN"
            elif pos == "VB":
                prev = [p for p in out if p != "RB"][-1:]
                if prev and prev[0] in ("DT", "JJ", "IN", "PRP$", "POS", "CD"):
                    pos = "NN"  # "by train", "an interview": a noun, not a verb
                elif not prev or prev[0] not in ("MD", "TO"):
                    pos = "VBP"  # bare verb without a modal: present plural
        elif lw.endswith("ing"):
            pos = "VBG"
        elif lw.endswith("ly"):
            pos = "RB"
        elif lw.endswith("s") and not lw.endswith("ss"):
            pos = "NNS"
        else:
            pos = "NN"
        out.append(pos)
    return out


def _chunk_tags(pos: Sequence[str]) -> list[str]:
    """Very small chunker: runs of NP-ish, VP-ish and preposition tags."""
    out: list[str] = []
    prev = "O"
    for p in pos:
        if p in _NP_TAGS:
            cur = "NP"
        elif p in _VP_TAGS:
            cur = "VP"
        elif p == "IN":
            cur = "PP"
        else:
            cur = "O"
        if cur == "O":
            out.append("O")
        elif cur == prev and not (cur == "NP" and p == "DT") and cur != "PP":
            out.append("I-" + cur)
        else:
            out.append("B-" + cur)
        prev = cur
    return out


def ner_sentences(seed: int = 0, num_sentences: int = 2000) -> list[tuple[list[str], list[str]]]:
    """Sentences from the same grammar with IOB2 tags (PER, LOC, ORG, MISC)."""
    world = build_world()
    rng = random.Random(derive_seed(seed, "ner"))
    out: list[tuple[list[str], list[str]]] = []
    while len(out) < num_sentences:
        for words, tags in generate_document(world, rng):
            n_ent = sum(t.startswith("B-") for t in tags)
            # Favour entity-rich sentences but keep a few plain ones, like real
            # NER data where many sentences have one or no entity.
            keep = n_ent >= 2 or (n_ent == 1 and rng.random() < 0.3) or rng.random() < 0.03
            if keep and len(out) < num_sentences:
                out.append((words, tags))
    return out


def write_conll(path: str | os.PathLike,
                sentences: Sequence[tuple[Sequence[str], Sequence[str]]]) -> None:
    """Write sentences in CoNLL-2003 format: `word POS chunk TAG` per line."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, tags in sentences:
        if len(words) != len(tags):
            raise ValueError("words and tags differ in length")
        pos = _pos_tags(words, tags)
        chunks = _chunk_tags(pos)
        lines.extend(f"{w} {p} {c} {t}" for w, p, c, t in zip(words, pos, chunks, tags))
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
