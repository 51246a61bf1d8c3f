"""Sentence pairs about the invented world, labelled as natural-language inference (NLI).

A premise states two facts about one person; the hypothesis states one claim about them:

    premise     Ilse Varnoki , a professor at the University of Tessaro , was born in Kelvamo .
    hypothesis  Ilse Varnoki works for the University of Tessaro .        entailment
                Ilse Varnoki was born in Ardunel .                         contradiction
                Ilse Varnoki enjoys sailing .                              neutral

Entailed claims restate a fact of the premise in other words; contradicting ones put another
organisation, city or role in its place; neutral ones are about something the premise does
not say (a hobby, the subject studied, the year of birth), true or false in the world.
Entailed and contradicting hypotheses are made from the same templates, so telling them apart
takes both texts: a model has to match the organisation, the city or the role across the two
segments.
"""

from __future__ import annotations

import os
import random
from typing import Sequence

from tfmask.demo.lexicon import fix_articles
from tfmask.demo.world import Person, World, build_world, derive_seed

#: Class names in the TSV, index = id (sorted, so a reader that sorts names gives these ids).
PAIR_LABELS = ("contradiction", "entailment", "neutral")


def _name(p: Person) -> str:
    return f"{p.first} {p.last}"


def _org(org) -> str:
    """A company's name as it is; "the University of ..." for a university."""
    name = " ".join(org.name)
    return name if org.kind == "company" else f"the {name}"


def _sentence(text: str) -> str:
    words = text.split()
    fix_articles(words)
    words[0] = words[0][0].upper() + words[0][1:]
    return " ".join(words)


def _premise(p: Person, rng: random.Random) -> str:
    forms = [f"{_name(p)} , a {p.role} at {_org(p.org)} , was born in {p.birth_city.name} .",
             f"Born in {p.birth_city.name} , {_name(p)} is a {p.role} at {_org(p.org)} .",
             f"{_name(p)} was born in {p.birth_city.name} and is a {p.role} at {_org(p.org)} ."]
    return rng.choice(forms)


def _other(rng: random.Random, options, current):
    return rng.choice([o for o in options if o is not current and o != current])


def _hypothesis(p: Person, world: World, label: str, rng: random.Random) -> str:
    who = _name(p) if rng.random() < 0.7 else p.pronoun.capitalize()
    if label == "entailment":
        return rng.choice([f"{who} works for {_org(p.org)} .",
                           f"{who} was born in {p.birth_city.name} .",
                           f"{who} is a {p.role} .",
                           f"{who} comes from {p.birth_city.name} .",
                           f"{_org(p.org)} employs {_name(p)} ."])
    if label == "contradiction":
        org = _other(rng, world.companies + world.universities, p.org)
        city = _other(rng, world.cities, p.birth_city)
        role = _other(rng, sorted({q.role for q in world.people if q.org.kind in (
            "company", "university")}), p.role)
        return rng.choice([f"{who} works for {_org(org)} .",
                           f"{who} was born in {city.name} .",
                           f"{who} is a {role} .",
                           f"{who} comes from {city.name} .",
                           f"{_org(org)} employs {_name(p)} ."])
    hobby = rng.choice(p.hobbies) if rng.random() < 0.5 else rng.choice(
        ["sailing", "chess", "gardening", "hiking", "cycling", "painting", "rowing"])
    return rng.choice([f"{who} enjoys {hobby} .",
                       f"{who} studied {p.subject} .",
                       f"{who} was born in {p.born} .",
                       f"{who} lives with {p.pronoun == 'she' and 'her' or 'his'} family ."])


def pair_examples(seed: int, n: int) -> list[tuple[str, str, int]]:
    """`n` (premise, hypothesis, label id) triples, the three labels equally often; label ids
    index `PAIR_LABELS`."""
    world = build_world()
    rng = random.Random(derive_seed(seed, "pairs"))
    people = [p for p in world.people if p.org.kind in ("company", "university")]
    out = []
    for i in range(n):
        label = PAIR_LABELS[i % len(PAIR_LABELS)]
        person = rng.choice(people)
        out.append((_sentence(_premise(person, rng)),
                    _sentence(_hypothesis(person, world, label, rng)),
                    PAIR_LABELS.index(label)))
    rng.shuffle(out)
    return out


def write_pairs_tsv(path: str | os.PathLike, examples: Sequence[tuple[str, str, int]]) -> None:
    """Writes a `premise<TAB>hypothesis<TAB>label` TSV with a header, labels as names."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("premise\thypothesis\tlabel\n")
        for premise, hypothesis, label in examples:
            if any(c in premise + hypothesis for c in "\t\n"):
                raise ValueError("a text contains a tab or newline")
            f.write(f"{premise}\t{hypothesis}\t{PAIR_LABELS[int(label)]}\n")
