"""News-like documents about the invented world, and the pretraining corpus written from them.

A document has one topic (company, city, person, product, event, sports, weather, science,
travel), its main entities, and one tense; its 3-12 sentences are that topic's productions
rendered with slots filled from those entities, so every sentence of a document agrees with the
others and with the world.
"""

from __future__ import annotations

import functools
import os
import random
from typing import Sequence

from tfmask.demo.grammar import Ctx, SlotValue, Span, Template, finish, phrase
from tfmask.demo.lexicon import FEATURES, pluralize
from tfmask.demo.productions import (
    GENERIC_TEMPLATES, TOPIC_TEMPLATES, TOPIC_TENSES, TOPIC_WEIGHTS)
from tfmask.demo.world import (
    NOW_YEAR, City, Event, Org, Person, Product, World, build_world, derive_seed)


# Slot bundles: every fact of one entity under a key, so a production can say
# "{o.ceo}" or "{c.river}" and always get the same (true) answer.


def _org_ref(org: Org) -> list[Span]:
    """An organisation as it appears mid-sentence: universities take "the"."""
    spans = phrase(org.name, "ORG")
    return phrase("the") + spans if org.kind == "university" else spans


def _org_slots(key: str, org: Org) -> dict[str, SlotValue]:
    s: dict[str, SlotValue] = {
        key: phrase(org.name, "ORG"),
        f"{key}.city": phrase(org.city.name, "LOC"),
        f"{key}.country": phrase(org.city.country.name, "LOC"),
        f"{key}.nat": phrase(org.city.country.demonym, "MISC"),
    }
    if org.kind == "company":
        s[f"{key}.industry"] = phrase(org.industry)
        s[f"{key}.founded"] = phrase(str(org.founded))
        s[f"{key}.staff"] = phrase(f"{org.staff:,}")
        s[f"{key}.brand"] = phrase(org.brand, "ORG")
    if org.ceo is not None:
        s[f"{key}.ceo"] = phrase((org.ceo.first, org.ceo.last), "PER")
        s[f"{key}.ceo.last"] = phrase(org.ceo.last, "PER")
    if org.products:
        prod = org.products[0]
        s[f"{key}.product"] = phrase(prod.name, "MISC")
        s[f"{key}.pcat"] = phrase(prod.category)
        s[f"{key}.pcats"] = phrase(pluralize(prod.category))
    if org.stadium:
        s[f"{key}.stadium"] = phrase(org.stadium, "LOC")
    return s


def _city_slots(key: str, city: City) -> dict[str, SlotValue]:
    s: dict[str, SlotValue] = {
        key: phrase(city.name, "LOC"),
        f"{key}.country": phrase(city.country.name, "LOC"),
        f"{key}.nat": phrase(city.country.demonym, "MISC"),
        f"{key}.river": phrase(city.river, "LOC"),
        f"{key}.kind": phrase(city.kind),
        f"{key}.known": phrase(city.known),
        f"{key}.pop": phrase(city.population),
        f"{key}.council": phrase(city.council, "ORG"),
        f"{key}.airport": phrase((city.name, "Airport"), "LOC"),
        f"{key}.hotel": phrase(city.hotel, "LOC"),
    }
    if city.capital:
        # Only capitals get this slot, so only they can use the "capital of" line.
        s[f"{key}.capital"] = phrase(city.name, "LOC")
    if city.mayor is not None:
        s[f"{key}.mayor"] = phrase((city.mayor.first, city.mayor.last), "PER")
        s[f"{key}.mayor.last"] = phrase(city.mayor.last, "PER")
        s[f"{key}.mayor_since"] = phrase(str(city.mayor_since))
    for attr in ("paper", "team", "university"):
        org = getattr(city, attr)
        if org is not None:
            s[f"{key}.{attr}"] = phrase(org.name, "ORG")
    if city.events:
        s[f"{key}.event"] = phrase(city.events[0].name, "MISC")
        s[f"{key}.event.month"] = phrase(city.events[0].month)
    return s


def _person_slots(key: str, p: Person) -> dict[str, SlotValue]:
    s: dict[str, SlotValue] = {
        key: phrase((p.first, p.last), "PER"),
        f"{key}.first": phrase(p.first, "PER"),
        f"{key}.last": phrase(p.last, "PER"),
        f"{key}.pron": phrase(p.pronoun),
        f"{key}.poss": phrase("her" if p.pronoun == "she" else "his"),
        f"{key}.role": phrase(p.role),
        f"{key}.org": _org_ref(p.org),
        f"{key}.city": phrase(p.city.name, "LOC"),
        f"{key}.nat": phrase(p.city.country.demonym, "MISC"),
        f"{key}.birthcity": phrase(p.birth_city.name, "LOC"),
        f"{key}.born": phrase(str(p.born)),
        f"{key}.subject": phrase(p.subject),
        f"{key}.uni": phrase(p.university.name, "ORG"),
        f"{key}.hobby": phrase(p.hobbies[0]),
        f"{key}.hobby2": phrase(p.hobbies[1]),
        f"{key}.trait": phrase(p.traits[0]),
        f"{key}.trait2": phrase(p.traits[1]),
        f"{key}.family": phrase(p.family),
    }
    if p.prev_org is not None:
        s[f"{key}.prev_org"] = _org_ref(p.prev_org)
        s[f"{key}.prev_years"] = phrase(str(p.prev_years))
    if p.award is not None:
        s[f"{key}.award"] = phrase(p.award[0], "MISC")
        s[f"{key}.award_year"] = phrase(str(p.award[1]))
    return s


def _product_slots(key: str, prod: Product) -> dict[str, SlotValue]:
    feats = FEATURES[prod.category]
    return {
        key: phrase(prod.name, "MISC"),
        f"{key}.cat": phrase(prod.category),
        f"{key}.cats": phrase(pluralize(prod.category)),
        f"{key}.launched": phrase(str(prod.launched)),
        f"{key}.colour": phrase(prod.colours[0]),
        f"{key}.colour2": phrase(prod.colours[1]),
        f"{key}.colour3": phrase(prod.colours[2]),
        f"{key}.feat": lambda c: phrase(c.rng.choice(feats)),
        f"{key}.feat2": lambda c: phrase(c.rng.choice(feats)),
    }


def _event_slots(key: str, ev: Event) -> dict[str, SlotValue]:
    return {
        key: phrase(ev.name, "MISC"),
        f"{key}.city": phrase(ev.city.name, "LOC"),
        f"{key}.month": phrase(ev.month),
        f"{key}.founded": phrase(str(ev.founded)),
        f"{key}.who": phrase(ev.participants),
    }


@functools.lru_cache(maxsize=1)
def _compiled() -> dict[str, list[Template]]:
    """Every production compiled once: by topic, and the topic-neutral ones as "generic"."""
    out = {t: [Template.compile(s) for s in ts] for t, ts in TOPIC_TEMPLATES.items()}
    out["generic"] = [Template.compile(s) for s in GENERIC_TEMPLATES]
    return out


def _zipf_choice(rng: random.Random, items: Sequence, skew: float = 0.8):
    """Pick with a Zipf-like bias so some entities recur often (as in real news)."""
    weights = [1.0 / (i + 1) ** skew for i in range(len(items))]
    return rng.choices(items, weights)[0]


def _new_document(world: World, rng: random.Random
                  ) -> tuple[Ctx, list[Template], list[Template]]:
    """Choose a topic, its main entities and a tense; return context + productions."""
    topics = list(TOPIC_WEIGHTS)
    topic = rng.choices(topics, [TOPIC_WEIGHTS[t] for t in topics])[0]
    tense = rng.choices(["past", "present", "future"], TOPIC_TENSES[topic])[0]
    year = {"past": rng.randint(2008, NOW_YEAR - 1), "present": NOW_YEAR,
            "future": rng.randint(NOW_YEAR + 1, NOW_YEAR + 5)}[tense]

    slots: dict[str, SlotValue] = {}
    if topic == "sports":
        t, t2 = rng.sample(world.teams, 2)
        players = [m for m in t.members if m is not t.ceo]
        pl, pl2 = rng.sample(players, 2)
        slots.update(_org_slots("t", t))
        slots.update(_org_slots("t2", t2))
        slots["t.founded"] = phrase(str(t.founded))
        # One result per match report, so every sentence agrees with it (the
        # winner scores at least twice because a player "scored twice").
        slots["score"] = phrase(f"{rng.randint(2, 5)} - {rng.randint(0, 1)}")
        slots.update(_person_slots("pl", pl))
        slots.update(_person_slots("pl2", pl2))
        city = t.city
        person = pl
    elif topic == "science":
        u = _zipf_choice(rng, world.universities)
        person = rng.choice([m for m in u.members if m.role != "rector"])
        slots.update(_org_slots("u", u))
        city = u.city
    elif topic == "event":
        ev = _zipf_choice(rng, world.events)
        slots.update(_event_slots("ev", ev))
        slots.update(_city_slots("ev.city", ev.city))
        city = ev.city
        person = rng.choice(world.people)
    elif topic in ("company", "product"):
        org = _zipf_choice(rng, world.companies)
        person = rng.choice([m for m in org.members if m is not org.ceo])
        city = org.city
    elif topic == "person":
        # Profiles are of professionals; athletes and mayors get their own topics.
        person = _zipf_choice(rng, [p for p in world.people
                                    if p.org.kind in ("company", "university", "paper")], 0.5)
        city = person.city
    else:  # city, weather, travel
        person = _zipf_choice(rng, world.people, 0.5)
        city = _zipf_choice(rng, world.cities, 0.6)

    if topic in ("company", "product"):
        slots.update(_org_slots("o", org))
    elif "o" not in slots:
        slots.update(_org_slots("o", rng.choice(world.companies)))
    if topic == "product":
        prod = rng.choice(org.products)
        slots.update(_product_slots("pr", prod))
    if "ev" not in slots:
        local = city.events and rng.random() < 0.7
        ev = rng.choice(city.events if local else world.events)
        slots.update(_event_slots("ev", ev))
    # The second company is a rival in the same industry, as in real business news.
    main = org if topic in ("company", "product") else None
    other = rng.choice([o for o in world.companies if o is not main and
                        (main is None or o.industry == main.industry)])
    slots.update(_org_slots("o2", other))
    slots.update(_city_slots("c", city))
    # A second city: usually abroad for companies, at home for trains and ferries.
    c2 = rng.choice([c for c in world.cities if c is not city])
    if topic in ("city", "travel", "weather"):
        c2 = rng.choice([c for c in city.country.cities if c is not city])
    slots.update(_city_slots("c2", c2))
    slots.update(_person_slots("p", person))
    slots["p.city.known"] = phrase(person.city.known)
    p2 = rng.choice(world.people)
    slots.update(_person_slots("p2", p2))
    slots["nat"] = phrase(rng.choice(world.countries).demonym, "MISC")

    ctx = Ctx(rng, tense, year, city.country.currency, slots)
    compiled = _compiled()
    pool = [t for t in compiled[topic] if t.usable(ctx)]
    generic = [t for t in compiled["generic"] if t.usable(ctx)]
    return ctx, pool, generic


def generate_document(world: World, rng: random.Random) -> list[tuple[list[str], list[str]]]:
    """One document: 3-12 sentences on a single topic, in a single tense."""
    ctx, pool, generic = _new_document(world, rng)
    n = rng.randint(3, min(12, len(pool)))
    # Productions keep grammar order most of the time, so the topic's lead
    # sentence tends to come first, as in a news story.
    chosen = [pool[i] for i in sorted(rng.sample(range(len(pool)), n))]
    if rng.random() < 0.3:
        rng.shuffle(chosen)
    # Now and then one topic-neutral line (quotes, comments) joins the story.
    if n < 12 and generic and rng.random() < 0.4:
        chosen.insert(rng.randint(1, n), rng.choice(generic))
    return [finish(t.render(ctx)) for t in chosen]


def corpus_documents(seed: int = 0, num_documents: int = 600) -> list[list[str]]:
    """Generate `num_documents` documents of 3-12 space-tokenised sentences each."""
    world = build_world()
    rng = random.Random(derive_seed(seed, "corpus"))
    return [[" ".join(words) for words, _ in generate_document(world, rng)]
            for _ in range(num_documents)]


def write_corpus(directory: str | os.PathLike, seed: int = 0, num_files: int = 4,
                 num_documents: int = 600) -> list[str]:
    """Write `corpus_00.txt`, `corpus_01.txt` ... into `directory`.

    One sentence per line, one blank line between documents; documents are
    split into contiguous, nearly equal chunks.  Returns the sorted paths.
    """
    os.makedirs(directory, exist_ok=True)
    docs = corpus_documents(seed, num_documents)
    paths = []
    per_file = -(-len(docs) // num_files)  # ceiling division: contiguous chunks
    for i in range(num_files):
        path = os.path.join(os.fspath(directory), f"corpus_{i:02d}.txt")
        chunk = docs[i * per_file:(i + 1) * per_file]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join("\n".join(doc) for doc in chunk))
            if chunk:
                f.write("\n")
        paths.append(path)
    return sorted(paths)
