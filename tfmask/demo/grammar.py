"""The template engine: sentence productions rendered into words with entity types.

A production such as `"{o.ceo} <announce> a new {o.pcat} {when} ."` is compiled once into a
`Template`; rendering it in a document's context (`Ctx`: its random stream, tense, year,
currency and slots) gives spans, runs of words with their entity type, and `finish` turns those
into words and IOB2 tags:

    production  {o.ceo}           <announce>  a new phone {when}
    spans       (Ada Brell, PER)  (announced) (a new phone) (last spring)
    words       Ada    Brell  announced  a  new  phone  last  spring
    tags        B-PER  I-PER  O          O  O    O      O     O
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from tfmask.demo.lexicon import (
    BENEFICIARIES, CIVIC, COMPLAINTS, COST_ITEMS, CROPS, DEAL_ADJ, FINDINGS, MONTHS,
    NUMBER_WORDS, ORDINALS, QUARTERS, SCIENCE_TOPICS, SEASONS, VERBS, WEEKDAYS, fix_articles,
    pluralize)

# A span is a run of words plus its entity type ("" for ordinary words).
Span = tuple[tuple[str, ...], str]
# A slot holds spans, or a function that draws them from the document's random stream.
SlotValue = list[Span] | Callable[["Ctx"], list[Span]]


def phrase(words: str | Sequence[str], etype: str = "") -> list[Span]:
    """One span from a string or a word sequence."""
    ws = tuple(words.split()) if isinstance(words, str) else tuple(words)
    return [(ws, etype)]


@dataclass
class Ctx:
    """Everything a template needs while rendering one document."""

    rng: random.Random
    tense: str  # "past", "present" or "future"
    year: int  # the document's year, so all its dates agree
    currency: str
    slots: dict[str, SlotValue] = field(default_factory=dict)


_TOKEN_RE = re.compile(r"\{[^}]+\}|\[[^\]]+\]|<[^>]+>|\S+")


@dataclass(frozen=True)
class Template:
    """A compiled sentence production.

    Syntax: `{slot}` fills in a slot, `<verb>` / `<verb/pl>` inflects a
    verb for the document's tense and a singular/plural subject (`/now`: use
    the present instead of the future, as in quotes), `<will>` is
    `would` in past documents (reported speech), `[a b|c]` picks one
    alternative, and `{#noun}` is a count with a correctly inflected noun.
    """

    parts: tuple[tuple[str, object], ...]
    needs: frozenset

    @staticmethod
    def compile(text: str) -> Template:
        parts: list[tuple[str, object]] = []
        needs = set()
        for tok in _TOKEN_RE.findall(text):
            if tok.startswith("{") and len(tok) > 2:
                name = tok[1:-1]
                parts.append(("slot", name))
                if not name.startswith("#"):
                    needs.add(name)
            elif tok.startswith("[") and len(tok) > 2:
                options = tuple(Template.compile(o) for o in tok[1:-1].split("|"))
                for o in options:
                    needs |= o.needs
                parts.append(("choice", options))
            elif tok.startswith("<") and len(tok) > 2:
                base, *flags = tok[1:-1].split("/")
                if base != "will" and base not in VERBS:
                    raise ValueError(f"unknown verb {base!r} in template {text!r}")
                parts.append(("verb", (base, "pl" in flags, "now" in flags)))
            else:
                parts.append(("word", tok))
        return Template(tuple(parts), frozenset(needs))

    def usable(self, ctx: Ctx) -> bool:
        return all(n in ctx.slots or n in _COMMON_SLOTS for n in self.needs)

    def render(self, ctx: Ctx) -> list[Span]:
        out: list[Span] = []
        for kind, val in self.parts:
            if kind == "word":
                out.append(((val,), ""))  # type: ignore[arg-type]
            elif kind == "choice":
                out.extend(ctx.rng.choice(val).render(ctx))  # type: ignore[arg-type]
            elif kind == "verb":
                out.append((_inflect(ctx.tense, *val), ""))  # type: ignore[misc]
            else:
                out.extend(_fill(str(val), ctx))
        return out


def _inflect(tense: str, base: str, plural: bool, now: bool = False) -> tuple[str, ...]:
    if now and tense == "future":
        tense = "present"
    if base == "will":
        return ("would",) if tense == "past" else ("will",)
    third, past = VERBS[base]
    if tense == "future":
        return ("will", base)
    if base == "be":
        if tense == "past":
            return ("were",) if plural else ("was",)
        return ("are",) if plural else ("is",)
    if tense == "past":
        return (past,)
    return (base,) if plural else (third,)


def _count_phrase(ctx: Ctx, spec: str) -> list[Span]:
    """`{#noun}` or `{#noun:lo-hi}`: a number and a noun that agrees with it."""
    noun, _, rng_spec = spec.partition(":")
    lo, hi = (int(x) for x in rng_spec.split("-")) if rng_spec else (1, 12)
    n = ctx.rng.randint(lo, hi)
    number = NUMBER_WORDS[n] if n <= 12 and ctx.rng.random() < 0.7 else str(n)
    return phrase(f"{number} {noun if n == 1 else pluralize(noun)}")


def _fill(name: str, ctx: Ctx) -> list[Span]:
    if name.startswith("#"):
        return _count_phrase(ctx, name[1:])
    value = ctx.slots[name] if name in ctx.slots else _COMMON_SLOTS[name]
    return value(ctx) if callable(value) else value


def _when(ctx: Ctx) -> list[Span]:
    """A time expression that agrees with the document's tense."""
    r = ctx.rng
    if ctx.tense == "past":
        options = [f"last {r.choice(SEASONS)}", f"in {ctx.year}", f"on {r.choice(WEEKDAYS)}",
                   f"in {r.choice(MONTHS)} {ctx.year}", f"on {_date(ctx)}",
                   f"{r.choice(NUMBER_WORDS[2:6])} weeks ago", "last week", "last month"]
    elif ctx.tense == "present":
        options = [f"this {r.choice(SEASONS)}", "this week", "this month", "today",
                   f"this {r.choice(WEEKDAYS)}", "this year"]
    else:
        options = [f"next {r.choice(SEASONS)}", "next year", f"in {r.choice(MONTHS)} {ctx.year}",
                   "next month", "later this year", f"in {ctx.year}", f"on {_date(ctx)}"]
    return phrase(r.choice(options))


def _date(ctx: Ctx) -> str:
    return f"{ctx.rng.randint(1, 28)} {ctx.rng.choice(MONTHS)} {ctx.year}"


def _money(ctx: Ctx) -> list[Span]:
    r = ctx.rng
    amount = str(r.randint(2, 950)) if r.random() < 0.6 else f"{r.randint(1, 9)}.{r.randint(1, 9)}"
    return phrase(f"{amount} {r.choice(['million', 'million', 'billion'])} {ctx.currency}")


def _price(ctx: Ctx) -> list[Span]:
    amount = ctx.rng.choice([15, 25, 40, 60, 90, 120, 150, 240, 400, 750, 1200])
    return phrase(f"{amount} {ctx.currency}")


_COMMON_SLOTS: dict[str, Callable[[Ctx], list[Span]]] = {
    "when": _when,
    "date": lambda c: phrase(_date(c)),
    "year": lambda c: phrase(str(c.year)),
    "later_year": lambda c: phrase(str(c.year + c.rng.randint(1, 3))),
    "old_year": lambda c: phrase(str(c.year - c.rng.randint(5, 40))),
    "month": lambda c: phrase(c.rng.choice(MONTHS)),
    "weekday": lambda c: phrase(c.rng.choice(WEEKDAYS)),
    "season": lambda c: phrase(c.rng.choice(SEASONS)),
    "pct": lambda c: phrase(str(c.rng.randint(2, 40))),
    "n": lambda c: phrase(str(c.rng.randint(12, 480))),
    "big_n": lambda c: phrase(f"{c.rng.randint(2, 90) * 1000:,}"),
    "money": _money,
    "price": _price,
    "quarter": lambda c: phrase(c.rng.choice(QUARTERS)),
    "ordinal": lambda c: phrase(c.rng.choice(ORDINALS[:6])),
    "civic": lambda c: phrase(c.rng.choice(CIVIC)),
    "complaint": lambda c: phrase(c.rng.choice(COMPLAINTS)),
    "cost_item": lambda c: phrase(c.rng.choice(COST_ITEMS)),
    "deal_adj": lambda c: phrase(c.rng.choice(DEAL_ADJ)),
    "topic": lambda c: phrase(c.rng.choice(SCIENCE_TOPICS)),
    "finding": lambda c: phrase(c.rng.choice(FINDINGS)),
    "beneficiary": lambda c: phrase(c.rng.choice(BENEFICIARIES)),
    "crop": lambda c: phrase(c.rng.choice(CROPS)),
    "temp": lambda c: phrase(str(c.rng.randint(-18, 38))),
    "minutes": lambda c: phrase(str(c.rng.choice([5, 10, 15, 20, 30, 45, 60]))),
}


def finish(spans: list[Span]) -> tuple[list[str], list[str]]:
    """Flatten spans into words and IOB2 tags, fixing a/an and capitalisation."""
    words: list[str] = []
    tags: list[str] = []
    for ws, etype in spans:
        for i, w in enumerate(ws):
            words.append(w)
            tags.append("O" if not etype else ("B-" if i == 0 else "I-") + etype)
    fix_articles(words)
    if words and words[0][0].islower():
        words[0] = words[0][0].upper() + words[0][1:]
    return words, tags
