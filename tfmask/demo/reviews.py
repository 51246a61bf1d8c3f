"""Review sentences with a known polarity, written as an SST-2 style TSV.

A review is of a film, a restaurant, a hotel or one of the world's products. Its aspects take
adjectives that fit them ("the soup was bland", never "the prices were rude"), and negation,
contrast ("..., but ...") and concession ("although ...") mean no single word decides the label.
"""

from __future__ import annotations

import os
import random
from typing import Sequence

from tfmask.demo.lexicon import FEATURES, SENT_ADJ, fix_articles
from tfmask.demo.world import World, build_world, derive_seed

# Which adjective class fits the parts of each industry's products.
_INDUSTRY_ADJ = {"food": "taste", "furniture": "make", "clothing": "make",
                 "pharmaceutical": "generic", "banking": "generic"}

# Domain -> [(aspect, is it plural, adjective class)].  Products use their
# category's features instead (see `lexicon.FEATURES`).
_SENT_ASPECTS: dict[str, list[tuple[str, bool, str]]] = {
    "film": [("plot", False, "story"), ("script", False, "story"), ("ending", False, "story"),
             ("dialogue", False, "story"), ("pacing", False, "story"),
             ("acting", False, "perf"), ("cast", False, "perf"), ("characters", True, "perf"),
             ("camera work", False, "look"), ("special effects", True, "look"),
             ("soundtrack", False, "generic"), ("direction", False, "generic")],
    "restaurant": [("food", False, "taste"), ("soup", False, "taste"), ("fish", False, "taste"),
                   ("dessert", False, "taste"), ("bread", False, "taste"),
                   ("coffee", False, "taste"),
                   ("staff", True, "people"), ("service", False, "people"),
                   ("prices", True, "price"), ("wine list", False, "generic"),
                   ("atmosphere", False, "generic")],
    "hotel": [("room", False, "room"), ("bed", False, "room"), ("bathroom", False, "room"),
              ("pool", False, "room"), ("breakfast", False, "taste"), ("staff", True, "people"),
              ("reception", False, "people"), ("location", False, "place"),
              ("view", False, "place"), ("rates", True, "price"), ("wifi", False, "tech")],
}
#: Class names in the TSV, index = id: 0 negative, 1 positive (also their sorted order, so a
#: reader that sorts the names it finds gives the same ids).
SENTIMENT_LABELS = ("negative", "positive")

_INTENSIFIERS = "very really truly quite extremely incredibly rather so".split()
_LOVE = ("loved enjoyed adored liked".split(), "hated disliked".split())


class _Review:
    """Builds one review sentence with a known polarity."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.rng = rng
        self.domain = rng.choice(["film", "restaurant", "hotel", "product"])
        if self.domain == "product":
            prod = rng.choice(world.products)
            self.target = " ".join(("the",) + prod.name)
            self.noun = prod.category
            cls = _INDUSTRY_ADJ.get(prod.org.industry, "tech")
            self.aspects = [(f, f.endswith("s") and not f.endswith(("ss", "lens", "focus")), cls)
                            for f in FEATURES[prod.category]]
            self.aspects += [("price", False, "price"), ("design", False, "generic")]
        else:
            self.noun = self.domain
            if self.domain == "film":
                name = rng.choice(world.films)
            elif self.domain == "restaurant":
                name = rng.choice(world.restaurants)
            else:
                name = tuple(rng.choice(world.cities).hotel.split())
            self.target = " ".join(name)
            self.aspects = _SENT_ASPECTS[self.domain]
        self.past = rng.random() < 0.6
        self.last_aspect = ""

    def _adj(self, cls: str, positive: bool) -> str:
        # Mix in generic adjectives so no single class word decides the label.
        if self.rng.random() < 0.35:
            cls = "generic"
        return self.rng.choice(SENT_ADJ[cls][0 if positive else 1])

    def predicate(self, cls: str, positive: bool) -> str:
        """An adjective phrase of the given polarity, possibly a negated opposite."""
        r = self.rng.random()
        if r < 0.55:
            adj = self._adj(cls, positive)
            if self.rng.random() < 0.4:
                adj = f"{self.rng.choice(_INTENSIFIERS)} {adj}"
            return adj
        if r < 0.9:
            # Negation flips polarity: "not bad" is positive, "not good" negative.
            adj = self._adj(cls, not positive)
            if not positive and self.rng.random() < 0.3:
                adj = f"{self.rng.choice(['very', 'particularly', 'exactly'])} {adj}"
            if positive and self.rng.random() < 0.3:
                return f"never {adj}"
            return f"not {adj}" + (" at all" if self.rng.random() < 0.2 else "")
        if positive:
            return self.rng.choice(["better than expected", "worth every penny",
                                    "a real highlight", "hard to fault"])
        return self.rng.choice(["far from perfect", "nothing special",
                                "a real letdown", "worse than expected"])

    def be(self, plural: bool) -> str:
        if self.past:
            return "were" if plural else "was"
        return "are" if plural else "is"

    def clause(self, positive: bool, avoid: str = "") -> str:
        """`the <aspect> was <predicate>`; `avoid` is the previous clause's aspect."""
        candidates = [a for a in self.aspects if a[0] != avoid] or self.aspects
        aspect, plural, cls = self.rng.choice(candidates)
        self.last_aspect = aspect
        subj = f"the {aspect}"
        # Name the target at most once per sentence, in the first clause.
        if not avoid and self.rng.random() < 0.35:
            link = "at" if self.domain in ("restaurant", "hotel") else "of"
            subj = f"the {aspect} {link} {self.target}"
        pred = self.predicate(cls, positive)
        return f"{subj} {self.be(plural)} {pred}"

    def sentence(self, positive: bool) -> str:
        r = self.rng
        form = r.randrange(10)
        if form == 0:
            text = self.clause(positive)
        elif form == 1:
            first = self.clause(not positive)
            text = f"{first} , but {self.clause(positive, self.last_aspect)}"
        elif form == 2:
            first = self.clause(not positive)
            text = f"although {first} , {self.clause(positive, self.last_aspect)}"
        elif form == 3:
            first = self.clause(positive)
            text = f"{first} and {self.clause(positive, self.last_aspect)}"
        elif form == 4:
            aspect = r.choice(self.aspects)[0]
            if r.random() < 0.7:
                verb = r.choice(_LOVE[0] if positive else _LOVE[1])
                adv = r.choice(["", "", "really ", "absolutely "])
                text = f"I {adv}{verb} the {aspect}"
            else:
                verb = ("could not fault" if positive
                        else r.choice(["did not enjoy", "did not like"]))
                text = f"I {verb} the {aspect}"
        elif form == 5:
            if positive:
                text = r.choice([f"I would recommend {self.target} to anyone",
                                 f"we will definitely go back to {self.target}",
                                 f"{self.target} is worth every penny",
                                 f"I would not hesitate to recommend {self.target}"])
            else:
                text = r.choice([f"I would not recommend {self.target} to anyone",
                                 f"we will never go back to {self.target}",
                                 f"{self.target} is not worth the money",
                                 f"I would hesitate to recommend {self.target}"])
        elif form == 6:
            pred = self.predicate("generic", positive)
            text = f"{self.target} is a {self.noun} that is {pred}"
        elif form == 7:
            aspect, _, cls = r.choice(self.aspects)
            adj = self._adj(cls, not positive)
            text = f"despite the {adj} {aspect} , {self.clause(positive, aspect)}"
        elif form == 8:
            first = self.clause(positive)
            aspect, plural, _ = r.choice([a for a in self.aspects if a[0] != self.last_aspect])
            comparative = "better" if positive else "worse"
            text = f"{first} , and the {aspect} {self.be(plural)} even {comparative}"
        else:
            pred = self.predicate("generic", positive)
            text = f"overall , {self.target} {'was' if self.past else 'is'} {pred}"
        words = (text + " .").split()
        fix_articles(words)
        words[0] = words[0][0].upper() + words[0][1:]
        return " ".join(words)


def sentiment_examples(seed: int = 0, num_examples: int = 2000) -> list[tuple[str, int]]:
    """Review-like sentences labelled 1 (positive) or 0 (negative), balanced."""
    world = build_world()
    rng = random.Random(derive_seed(seed, "sentiment"))
    # Exactly balanced labels in random order.
    labels = [i % 2 for i in range(num_examples)]
    rng.shuffle(labels)
    out = []
    for label in labels:
        text = _Review(world, rng).sentence(bool(label))
        out.append((text, label))
    return out


def write_sentiment_tsv(path: str | os.PathLike, examples: Sequence[tuple[str, int]]) -> None:
    """Write examples as an SST-2 style TSV with a `sentence\\tlabel` header, each label as
    its class name (`SENTIMENT_LABELS`: 0 -> negative, 1 -> positive), so a model trained on
    it reports names, not ids."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in examples:
            if "\t" in text or "\n" in text:
                raise ValueError("sentence contains a tab or newline")
            f.write(f"{text}\t{SENTIMENT_LABELS[int(label)]}\n")
