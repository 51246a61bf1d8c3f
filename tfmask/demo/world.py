"""The invented world: countries, cities, organisations, people, products and events.

`build_world` draws it once from a fixed seed, so the pretraining corpus, the NER sentences and
the reviews all talk about the same world (a person always works for the same organisation in
the same city, a company always has the same headquarters and products); the `seed` of each data
set only changes what is sampled from it (`derive_seed`).
"""

from __future__ import annotations

import functools
import random
import zlib
from dataclasses import dataclass, field

from tfmask.demo.lexicon import (
    AWARD_FIELDS, CITY_KINDS, CITY_KNOWN, COLOURS, EVENT_KINDS, FAMILY, HOBBIES, INDUSTRIES,
    MONTHS, POSITIONS, SUBJECTS, TEAM_SUFFIXES, TITLE_ADJ, TITLE_NOUNS, TRAITS)
from tfmask.demo.names import (
    BRAND_ENDINGS, CITY_ENDINGS, COUNTRIES, FEMALE_ENDINGS, MALE_ENDINGS, MODEL_ENDINGS,
    SURNAME_ENDINGS, Namer, lexicon_words)

# The world (names and facts) is fixed; only sampling depends on `seed`.  This
# keeps the tokenizer vocabulary learnt from the corpus valid for the NER and
# sentiment data, which mention the same entities.
_WORLD_SEED = 20240611

# The world's "now": past-tense documents are dated before it, future-tense
# documents after it.
NOW_YEAR = 2024


def derive_seed(seed: int, purpose: str) -> int:
    """A stable per-purpose seed (`hash()` is salted per process, crc32 is not)."""
    return zlib.crc32(f"{purpose}:{seed}".encode("utf-8"))


# eq=False: entities are compared by identity (`is`) and stay hashable.
@dataclass(eq=False)
class Country:
    """A country with its rivers and its five cities (the first is the capital)."""

    name: str
    demonym: str
    currency: str
    rivers: list[str] = field(default_factory=list)
    cities: list[City] = field(default_factory=list)


@dataclass(eq=False)
class City:
    """A city and its fixed facts: river, mayor, council, paper, team, university, events."""

    name: str
    country: Country
    river: str
    kind: str
    known: str
    population: str
    capital: bool = False
    mayor: Person | None = None
    mayor_since: int = 0
    council: tuple[str, ...] = ()
    paper: Org | None = None
    team: Org | None = None
    university: Org | None = None
    events: list[Event] = field(default_factory=list)
    hotel: str = ""


@dataclass(eq=False)
class Org:
    """A company, university, sports team, newspaper or city council."""

    name: tuple[str, ...]
    kind: str  # company, university, team, paper, council
    city: City
    industry: str = ""
    brand: str = ""
    founded: int = 0
    staff: int = 0
    ceo: Person | None = None
    members: list[Person] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    stadium: tuple[str, ...] = ()


@dataclass(eq=False)
class Person:
    """A person with one job, birthplace, degree and private life, for good."""

    first: str
    last: str
    pronoun: str
    role: str
    org: Org
    born: int
    birth_city: City
    subject: str
    university: Org
    hobbies: tuple[str, str]
    traits: tuple[str, str]
    family: str
    prev_org: Org | None = None
    prev_years: int = 0
    award: tuple[tuple[str, ...], int] | None = None

    @property
    def city(self) -> City:
        return self.org.city


@dataclass(eq=False)
class Product:
    """A product of one company, in one category and three colours."""

    name: tuple[str, ...]
    org: Org
    category: str
    launched: int
    colours: tuple[str, str, str]


@dataclass(eq=False)
class Event:
    """A yearly event in one city (a festival, a fair, a race)."""

    name: tuple[str, ...]
    city: City
    participants: str
    month: str
    founded: int


@dataclass(eq=False)
class World:
    """Everything `build_world` invents, in the order it was made."""

    countries: list[Country]
    cities: list[City]
    companies: list[Org]
    universities: list[Org]
    teams: list[Org]
    papers: list[Org]
    people: list[Person]
    products: list[Product]
    events: list[Event]
    awards: list[tuple[str, ...]]
    films: list[tuple[str, ...]]
    restaurants: list[tuple[str, ...]]


def _format_population(rng: random.Random) -> str:
    n = rng.choice([rng.randint(4, 99) * 1000, rng.randint(100, 950) * 1000])
    return f"{n:,}"


@functools.lru_cache(maxsize=1)
def build_world() -> World:
    """Build the invented world once; it is identical for every seed."""
    rng = random.Random(_WORLD_SEED)
    namer = Namer(rng, lexicon_words())

    countries = [Country(n, d, c) for n, d, c in COUNTRIES]
    for country in countries:
        country.rivers = [namer.make(["", "a", "e", "en", "is"], (1, 1), 4, 7)
                          for _ in range(2)]

    # Cities: 5 per country; the first one is the capital.
    cities: list[City] = []
    for country in countries:
        for i in range(5):
            city = City(namer.make(CITY_ENDINGS, min_len=6), country, rng.choice(country.rivers),
                        rng.choice(CITY_KINDS), rng.choice(CITY_KNOWN),
                        _format_population(rng), capital=(i == 0))
            city.council = (city.name, "City", "Council")
            country.cities.append(city)
            cities.append(city)

    def new_surname() -> str:
        return namer.make(SURNAME_ENDINGS, (1, 2), 5, 10)

    female = [namer.make(FEMALE_ENDINGS, (1, 1), 3, 8) for _ in range(75)]
    male = [namer.make(MALE_ENDINGS, (1, 1), 3, 8) for _ in range(75)]

    universities: list[Org] = []
    for city in cities:
        if city.capital or city.kind == "university city" or rng.random() < 0.2:
            name = (("University", "of", city.name) if rng.random() < 0.75
                    else (city.name, "Institute", "of", "Technology"))
            city.university = Org(name, "university", city, founded=rng.randint(1450, 1970))
            universities.append(city.university)

    companies: list[Org] = []
    industries = list(INDUSTRIES)
    for i in range(56):
        industry = industries[i % len(industries)]
        city = rng.choice(cities)
        brand = namer.make(BRAND_ENDINGS, (1, 2), 5, 9)
        suffix = rng.choice(INDUSTRIES[industry]["suffix"])
        org = Org((brand, suffix), "company", city, industry=industry, brand=brand,
                  founded=rng.randint(1890, 2016),
                  staff=rng.choice([40, 120, 300, 850, 2000, 6500]))
        companies.append(org)

    papers = []
    for city in cities:
        if rng.random() < 0.5:
            city.paper = Org((city.name, rng.choice(["Herald", "Courier", "Gazette", "Post"])),
                             "paper", city, founded=rng.randint(1820, 1990))
            papers.append(city.paper)

    teams = []
    for city in rng.sample(cities, 20):
        city.team = Org((city.name, rng.choice(TEAM_SUFFIXES)), "team", city,
                        founded=rng.randint(1880, 1960),
                        stadium=(new_surname(), rng.choice(["Park", "Arena", "Stadium"])))
        teams.append(city.team)

    people: list[Person] = []

    def person(org: Org, role: str) -> Person:
        is_female = rng.random() < 0.5
        first = rng.choice(female if is_female else male)
        country_cities = org.city.country.cities
        birth_city = org.city if rng.random() < 0.4 else rng.choice(
            country_cities if rng.random() < 0.7 else cities)
        p = Person(first, new_surname(), "she" if is_female else "he", role, org,
                   born=rng.randint(1950, 1998), birth_city=birth_city,
                   subject=rng.choice(SUBJECTS), university=rng.choice(universities),
                   hobbies=tuple(rng.sample(HOBBIES, 2)),  # type: ignore[arg-type]
                   traits=tuple(rng.sample(TRAITS, 2)),  # type: ignore[arg-type]
                   family=rng.choice(FAMILY))
        org.members.append(p)
        people.append(p)
        return p

    for org in companies:
        org.ceo = person(org, "chief executive")
        for role in rng.sample(INDUSTRIES[org.industry]["roles"], 3):
            person(org, role)
    for org in universities:
        org.ceo = person(org, "rector")
        for role in ["professor", "professor", "researcher"]:
            person(org, role)
    for org in papers:
        org.ceo = person(org, "editor")
        person(org, rng.choice(["reporter", "photographer", "columnist"]))
    for org in teams:
        org.ceo = person(org, "coach")
        for pos in rng.sample(POSITIONS, 4):
            person(org, pos)
    for city in cities:
        council = Org(city.council, "council", city)
        city.mayor = person(council, "mayor")
        city.mayor_since = rng.randint(2008, 2022)
    for p in people:
        if p.org.kind in ("company", "university", "paper") and rng.random() < 0.6:
            p.prev_org = rng.choice(companies + universities)
            if p.prev_org is p.org:
                p.prev_org = None
            p.prev_years = rng.randint(2, 15)

    awards = [(new_surname(), "Prize", "for", f) for f in AWARD_FIELDS]
    for p in rng.sample(people, len(people) // 5):
        p.award = (rng.choice(awards), rng.randint(max(p.born + 25, 1990), NOW_YEAR - 1))

    products: list[Product] = []
    for org in companies:
        cats = rng.sample(INDUSTRIES[org.industry]["cats"], 2)
        for cat in cats[: rng.randint(1, 2)]:
            model = namer.make(MODEL_ENDINGS, (1, 2), 5, 9)
            name = (org.brand, model) + ((str(rng.randint(2, 9)),) if rng.random() < 0.35 else ())
            launched = rng.randint(max(org.founded, 2005), NOW_YEAR - 1)
            prod = Product(name, org, cat, launched=launched,
                           colours=tuple(rng.sample(COLOURS, 3)))  # type: ignore[arg-type]
            org.products.append(prod)
            products.append(prod)

    events: list[Event] = []
    for kind, participants in EVENT_KINDS:
        for city in rng.sample(cities, 2):
            ev = Event((city.name,) + tuple(kind.split()), city, participants,
                       rng.choice(MONTHS), rng.randint(1950, 2015))
            city.events.append(ev)
            events.append(ev)

    for city in cities:
        city.hotel = rng.choice(["Hotel {n}", "{n} Grand", "{n} Inn", "{n} Lodge"]).format(
            n=namer.make(BRAND_ENDINGS, (1, 2), 4, 9))

    films = []
    for _ in range(40):
        form = rng.random()
        if form < 0.4:
            films.append(("The", rng.choice(TITLE_ADJ), rng.choice(TITLE_NOUNS)))
        elif form < 0.7:
            films.append(("The", rng.choice(TITLE_NOUNS), "of", rng.choice(cities).name))
        else:
            films.append((namer.make(MODEL_ENDINGS, (1, 2), 4, 8), rng.choice(TITLE_NOUNS)))
    restaurants = []
    for _ in range(30):
        form = rng.random()
        n = namer.make(BRAND_ENDINGS, (1, 2), 4, 9)
        if form < 0.35:
            restaurants.append(("Cafe", n))
        elif form < 0.7:
            restaurants.append((n, rng.choice(["Grill", "Kitchen", "Bistro", "Tavern"])))
        else:
            restaurants.append((new_surname(), "'s"))

    return World(countries, cities, companies, universities, teams, papers, people,
                 products, events, awards, films, restaurants)
