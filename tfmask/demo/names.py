"""Invented names: the hand-written countries, and syllable-built names for everything else.

`Namer` makes pronounceable names from weighted onsets, vowels and codas plus an ending that
hints at the kind of thing named (`-vik` a city, `-ssen` a surname). It never gives out a name
twice, nor one that is an ordinary word of the grammar (`lexicon_words`) or a real word or place.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Iterable, Sequence

from tfmask.demo import lexicon, productions

# Hand-written countries: (name, adjective/demonym, currency in the plural).
COUNTRIES = [
    ("Valdoria", "Valdorian", "velds"), ("Norvanta", "Norvantan", "orins"),
    ("Belmora", "Belmoran", "sarks"), ("Caldrin", "Caldrish", "tolvens"),
    ("Ilvenia", "Ilvenian", "ruvas"), ("Sardova", "Sardovan", "kestas"),
    ("Drevania", "Drevanian", "brins"), ("Helmark", "Helmarkish", "halders"),
    ("Zantora", "Zantoran", "zents"), ("Quellin", "Quellish", "quarns"),
]

_ONSETS = "b br d dr f g gr h k kr l m n p r s sk st t tr v z th"
_ONSETS_W = [(o, 3 if len(o) == 1 else 1) for o in _ONSETS.split()]
_VOWELS_W = [("a", 5), ("e", 5), ("i", 3), ("o", 4), ("u", 1), ("ae", 1), ("ei", 1)]
_CODAS_W = [("", 8), ("n", 2), ("r", 2), ("l", 2), ("s", 1), ("k", 1), ("m", 1)]

CITY_ENDINGS = ["vik", "holm", "stad", "mere", "dal", "haven", "ford", "wick",
                "borg", "lund", "ova", "enza", "ara", "by", "port", "heim", "ness",
                "gate"]
# Surname endings deliberately share nothing with city endings, so the shape
# of a name is a (learnable) hint of its type.
SURNAME_ENDINGS = ["en", "er", "ard", "ell", "ani", "ino", "ler", "ton",
                   "rin", "ssen", "mont", "ez", "is"]
FEMALE_ENDINGS = ["a", "ia", "ine", "elle", "ora", "ina", "eth", "ette"]
MALE_ENDINGS = ["an", "or", "im", "as", "en", "ik", "o", "ert", "us", "el"]
BRAND_ENDINGS = ["ex", "ix", "on", "ica", "ara", "o", "an", "el", "ium", "ek"]
MODEL_ENDINGS = ["o", "a", "is", "um", "ar", "en", "ix"]


# Syllable soup can produce real words or names; these are never used.  (Short
# names are the risky ones, hence also the minimum lengths below.)
_AVOID_NAMES = frozenset("""
gale hell hen den pine sine nan bastad lamex boris muller resto rosen robo
talon salon melon lemon demon baron tenor toner manor minor miner motor rotor
solar polar final canal total token taken given often seven omen robin saber
tiger timer linen women lima rome oslo bern riga kiev nice mali peru chad
sudan malta samoa tonga kenya ghana benin niger gabon congo
""".split())


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def _syllables(rng: random.Random, n: int) -> str:
    return "".join(_pick(rng, _ONSETS_W) + _pick(rng, _VOWELS_W) + _pick(rng, _CODAS_W)
                   for _ in range(n))


class Namer:
    """Generates unique, pronounceable invented names.

    Names are checked against every other name and against the common-word
    lexicon so that a word is never both, say, a surname and a city (which
    would make the NER labels contradictory).
    """

    def __init__(self, rng: random.Random, reserved: Iterable[str]) -> None:
        self.rng = rng
        self.used = set(reserved) | _AVOID_NAMES

    def make(self, endings: Sequence[str], syllables: tuple[int, int] = (1, 2),
             min_len: int = 4, max_len: int = 10) -> str:
        for _ in range(1000):
            stem = _syllables(self.rng, self.rng.randint(*syllables))
            ending = self.rng.choice(endings)
            # Avoid awkward vowel or consonant pile-ups at the join.
            if ending and stem[-1] in "aeiou" and ending[0] in "aeiou":
                stem = stem[:-1]
            name = (stem + ending).capitalize()
            if (min_len <= len(name) <= max_len and name.lower() not in self.used
                    and not re.search(r"(.)\1\1", name.lower())):
                self.used.add(name.lower())
                return name
        raise RuntimeError("name space exhausted")  # pragma: no cover


@functools.lru_cache(maxsize=1)
def lexicon_words() -> frozenset:
    """Every ordinary word of the grammar, so invented names never collide with one."""
    words = set()
    for text in [*productions.TOPIC_TEMPLATES.values(), productions.GENERIC_TEMPLATES]:
        for t in text:
            words.update(re.findall(r"[a-z]+", t.lower()))
    for lst in (lexicon.MONTHS, lexicon.WEEKDAYS, lexicon.SEASONS, lexicon.NUMBER_WORDS,
                lexicon.ORDINALS, lexicon.COLOURS, lexicon.CITY_KINDS, lexicon.CITY_KNOWN,
                lexicon.CIVIC, lexicon.COMPLAINTS, lexicon.COST_ITEMS, lexicon.SUBJECTS,
                lexicon.HOBBIES, lexicon.TRAITS, lexicon.FAMILY, lexicon.SCIENCE_TOPICS,
                lexicon.FINDINGS, lexicon.BENEFICIARIES, lexicon.CROPS, lexicon.AWARD_FIELDS,
                lexicon.TEAM_SUFFIXES, lexicon.POSITIONS, lexicon.TITLE_ADJ, lexicon.TITLE_NOUNS):
        for item in lst:
            words.update(item.lower().split())
    for base, forms in lexicon.VERBS.items():
        words.update((base,) + forms)
    for ind in lexicon.INDUSTRIES.values():
        for lst in ind.values():
            for item in lst:
                words.update(item.lower().split())
    for feats in lexicon.FEATURES.values():
        for f in feats:
            words.update(f.split())
    for pos, neg in lexicon.SENT_ADJ.values():
        words.update(pos + neg)
    for name, demonym, currency in COUNTRIES:
        words.update((name.lower(), demonym.lower(), currency))
    return frozenset(words)
