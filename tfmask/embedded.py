"""Embedded default data: a small, self-written, procedurally generated corpus.

Why this exists
---------------
``tfmask pretrain`` with no ``--corpus`` has to run end to end, offline, in a
few minutes on a CPU, and the NER and sentiment fine-tuning jobs need labelled
data of the same kind.  Downloading Wikipedia, CoNLL-2003 or SST-2 is not an
option (no network, licences, size), so the project *writes its own text*.

Everything here is generated from code in this file with the Python standard
library only; no sentence or name is copied from anywhere.  The text is drawn
from a small invented world: countries, cities, rivers, companies,
universities, sports teams, newspapers, people, products and events, all with
made-up names.  The world is built once from a fixed seed, so every data set
(pretraining corpus, NER, sentiment) talks about the *same* world; the ``seed``
arguments only change which documents and sentences are sampled from it.

The grammar is designed so that a tiny BERT has something real to learn with
masked language modelling:

* agreement: ``a``/``an``, singular/plural nouns after counts, ``was``/``were``;
* tense consistency: each document is in the past, present or future tense and
  its verbs and time expressions (``last spring`` / ``next spring``) follow it;
* collocations: ``board of directors``, ``heavy rain``, ``second half`` ...;
* stable facts: a person always works for the same organisation in the same
  city, a company always has the same headquarters, currency and products, a
  city always lies on the same river in the same country;
* numbers, dates, quotes and punctuation.

Public API: :func:`corpus_documents`, :func:`write_corpus`,
:func:`ner_sentences`, :func:`write_conll`, :func:`sentiment_examples`,
:func:`write_sentiment_tsv` and :func:`write_all`.  Everything is deterministic
given ``seed`` and uses private :class:`random.Random` instances, never the
global random state.
"""

from __future__ import annotations

import functools
import os
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "corpus_documents",
    "write_corpus",
    "ner_sentences",
    "write_conll",
    "sentiment_examples",
    "write_sentiment_tsv",
    "write_all",
]

PathLike = Union[str, "os.PathLike[str]"]

# The world (names and facts) is fixed; only sampling depends on ``seed``.  This
# keeps the tokenizer vocabulary learnt from the corpus valid for the NER and
# sentiment data, which mention the same entities.
_WORLD_SEED = 20240611

# The world's "now": past-tense documents are dated before it, future-tense
# documents after it.
_NOW_YEAR = 2024


def _derive_seed(seed: int, purpose: str) -> int:
    """A stable per-purpose seed (``hash()`` is salted per process, crc32 is not)."""
    return zlib.crc32(f"{purpose}:{seed}".encode("utf-8"))


# ---------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------

_IRREGULAR_VERBS: Dict[str, Tuple[str, str]] = {
    # base: (third person singular, past)
    "be": ("is", "was"),
    "become": ("becomes", "became"),
    "beat": ("beats", "beat"),
    "begin": ("begins", "began"),
    "bring": ("brings", "brought"),
    "build": ("builds", "built"),
    "buy": ("buys", "bought"),
    "come": ("comes", "came"),
    "cost": ("costs", "cost"),
    "cut": ("cuts", "cut"),
    "draw": ("draws", "drew"),
    "fall": ("falls", "fell"),
    "find": ("finds", "found"),
    "give": ("gives", "gave"),
    "go": ("goes", "went"),
    "grow": ("grows", "grew"),
    "hold": ("holds", "held"),
    "keep": ("keeps", "kept"),
    "lead": ("leads", "led"),
    "leave": ("leaves", "left"),
    "lose": ("loses", "lost"),
    "make": ("makes", "made"),
    "meet": ("meets", "met"),
    "rise": ("rises", "rose"),
    "run": ("runs", "ran"),
    "say": ("says", "said"),
    "sell": ("sells", "sold"),
    "send": ("sends", "sent"),
    "speak": ("speaks", "spoke"),
    "spend": ("spends", "spent"),
    "take": ("takes", "took"),
    "tell": ("tells", "told"),
    "win": ("wins", "won"),
    "write": ("writes", "wrote"),
}

_REGULAR_VERBS = """
announce appear approve attend call cancel cause celebrate close collect complain
confirm connect criticise damage delay describe design double enjoy expand export
face finish host hire increase interview introduce invest join launch live move
open perform plan praise promise publish reach receive reduce reject release
remain report return score serve sign stay stop supply support test thank train
travel unveil use visit vote warn watch welcome work predict question recommend
miss play offer compete tackle decline expect
""".split()

# British spelling doubles the final consonant for these.
_DOUBLED = {"plan": "planned", "stop": "stopped", "travel": "travelled", "cancel": "cancelled"}


def _regular_forms(base: str) -> Tuple[str, str]:
    """Third person singular and past tense of a regular verb."""
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2] not in "aeiou":
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    if base in _DOUBLED:
        past = _DOUBLED[base]
    elif base.endswith("e"):
        past = base + "d"
    elif base.endswith("y") and base[-2] not in "aeiou":
        past = base[:-1] + "ied"
    else:
        past = base + "ed"
    return third, past


_VERBS: Dict[str, Tuple[str, str]] = {v: _regular_forms(v) for v in _REGULAR_VERBS}
_VERBS.update(_IRREGULAR_VERBS)

_MONTHS = ("January February March April May June July August September "
           "October November December").split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_SEASONS = "spring summer autumn winter".split()
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven "
                 "twelve").split()
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()
_QUARTERS = "first second third fourth".split()

# Irregular plurals; everything else takes -s / -es / -ies.
_PLURALS = {
    "child": "children", "person": "people", "bus": "buses", "staff": "staff",
    "series": "series", "fish": "fish", "sheep": "sheep", "headquarters": "headquarters",
    "man": "men", "woman": "women", "city": "cities", "ferry": "ferries",
    "knife": "knives", "shelf": "shelves", "leaf": "leaves",
}


def _plural(noun: str) -> str:
    """Plural of a (possibly multi-word) noun; only the last word inflects."""
    head, _, last = noun.rpartition(" ")
    if last in _PLURALS:
        p = _PLURALS[last]
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        p = last + "es"
    elif last.endswith("y") and last[-2] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


# Industries: company-name suffixes, product categories and typical job titles.
_INDUSTRIES: Dict[str, Dict[str, List[str]]] = {
    "electronics": {
        "suffix": ["Electronics", "Devices", "Instruments"],
        "cats": ["phone", "laptop", "camera", "headset", "smart watch", "tablet", "speaker"],
        "roles": ["engineer", "designer", "product manager", "sales director",
                  "chief financial officer"],
    },
    "automotive": {
        "suffix": ["Motors", "Automotive", "Vehicles"],
        "cats": ["car", "van", "truck", "electric scooter", "electric bicycle"],
        "roles": ["engineer", "test driver", "plant manager", "designer", "sales director"],
    },
    "software": {
        "suffix": ["Labs", "Software", "Systems", "Digital"],
        "cats": ["app", "game", "browser", "accounting platform", "translation tool"],
        "roles": ["software developer", "data scientist", "product manager", "designer",
                  "security analyst"],
    },
    "energy": {
        "suffix": ["Energy", "Power", "Renewables"],
        "cats": ["solar panel", "wind turbine", "heat pump", "battery pack"],
        "roles": ["engineer", "geologist", "plant manager", "safety inspector",
                  "chief financial officer"],
    },
    "food": {
        "suffix": ["Foods", "Dairy", "Bakeries", "Breweries"],
        "cats": ["cheese", "chocolate bar", "fruit juice", "yoghurt", "breakfast cereal", "lager"],
        "roles": ["food scientist", "brewer", "quality manager", "buyer", "marketing director"],
    },
    "furniture": {
        "suffix": ["Furniture", "Interiors", "Woodworks"],
        "cats": ["sofa", "office chair", "desk", "lamp", "bookcase"],
        "roles": ["carpenter", "designer", "buyer", "plant manager", "marketing director"],
    },
    "clothing": {
        "suffix": ["Textiles", "Outfitters", "Apparel"],
        "cats": ["rain jacket", "hiking boot", "backpack", "winter coat", "sleeping bag"],
        "roles": ["designer", "buyer", "tailor", "marketing director", "store manager"],
    },
    "pharmaceutical": {
        "suffix": ["Pharma", "Therapeutics", "Biotech"],
        "cats": ["vaccine", "flu medicine", "test kit", "hearing aid"],
        "roles": ["chemist", "biologist", "lab technician", "regulatory manager",
                  "chief medical officer"],
    },
    "banking": {
        "suffix": ["Bank", "Capital", "Savings"],
        "cats": ["savings account", "mortgage", "credit card", "pension fund"],
        "roles": ["economist", "analyst", "accountant", "loan officer", "chief financial officer"],
    },
    "shipping": {
        "suffix": ["Shipping", "Lines", "Logistics"],
        "cats": ["container ship", "ferry", "delivery drone", "cargo plane"],
        "roles": ["captain", "logistics manager", "port agent", "engineer", "dispatcher"],
    },
}

# Parts of each product category that reviews and launch reports talk about.
_FEATURES: Dict[str, List[str]] = {
    "phone": ["battery", "screen", "camera", "speaker", "charger"],
    "laptop": ["keyboard", "screen", "battery", "trackpad", "fan"],
    "camera": ["lens", "sensor", "battery", "viewfinder", "autofocus"],
    "headset": ["microphone", "battery", "ear cushions", "sound", "cable"],
    "smart watch": ["strap", "display", "battery", "heart rate sensor"],
    "tablet": ["screen", "battery", "stylus", "case", "speaker"],
    "speaker": ["bass", "battery", "volume control", "sound"],
    "car": ["engine", "brakes", "seats", "gearbox", "dashboard", "heating"],
    "van": ["engine", "brakes", "cargo space", "seats", "gearbox"],
    "truck": ["engine", "brakes", "cab", "gearbox", "suspension"],
    "electric scooter": ["motor", "battery", "brakes", "frame", "lights"],
    "electric bicycle": ["motor", "battery", "gears", "saddle", "frame"],
    "app": ["interface", "search", "menus", "notifications", "login"],
    "game": ["story", "graphics", "controls", "music", "levels"],
    "browser": ["interface", "tabs", "search", "speed", "privacy settings"],
    "accounting platform": ["interface", "reports", "invoices", "support"],
    "translation tool": ["interface", "accuracy", "speed", "voice input"],
    "solar panel": ["output", "frame", "inverter", "mounting"],
    "wind turbine": ["blades", "gearbox", "output", "tower"],
    "heat pump": ["compressor", "noise level", "controls", "output"],
    "battery pack": ["capacity", "charger", "casing", "display"],
    "cheese": ["flavour", "texture", "rind", "packaging"],
    "chocolate bar": ["flavour", "texture", "packaging", "sweetness"],
    "fruit juice": ["flavour", "sweetness", "packaging", "colour"],
    "yoghurt": ["flavour", "texture", "sweetness", "packaging"],
    "breakfast cereal": ["flavour", "crunch", "packaging", "sweetness"],
    "lager": ["flavour", "aroma", "bottle", "colour"],
    "sofa": ["cushions", "fabric", "frame", "legs"],
    "office chair": ["backrest", "armrests", "wheels", "fabric"],
    "desk": ["surface", "drawers", "legs", "finish"],
    "lamp": ["bulb", "switch", "shade", "base"],
    "bookcase": ["shelves", "finish", "frame", "doors"],
    "rain jacket": ["zip", "hood", "lining", "pockets", "fabric"],
    "hiking boot": ["sole", "laces", "lining", "grip"],
    "backpack": ["straps", "zip", "pockets", "fabric"],
    "winter coat": ["zip", "hood", "lining", "pockets"],
    "sleeping bag": ["zip", "lining", "filling", "stuff sack"],
    "vaccine": ["dosage", "packaging", "storage"],
    "flu medicine": ["dosage", "taste", "packaging"],
    "test kit": ["instructions", "swab", "display"],
    "hearing aid": ["battery", "sound", "fit", "app"],
    "savings account": ["interest rate", "app", "fees"],
    "mortgage": ["interest rate", "fees", "terms"],
    "credit card": ["fees", "interest rate", "app", "rewards"],
    "pension fund": ["returns", "fees", "reports"],
    "container ship": ["engine", "hull", "cranes", "fuel system"],
    "ferry": ["engine", "deck", "cabins", "cafe"],
    "delivery drone": ["battery", "camera", "motors", "range"],
    "cargo plane": ["engines", "cargo hold", "range", "cockpit"],
}

_COLOURS = ("black white silver grey red blue green yellow orange navy olive "
            "sand copper graphite").split()

_CITY_KINDS = ["small port town", "busy industrial city", "quiet market town",
               "university city", "mountain town", "fishing town",
               "coastal city", "river port", "spa town", "old mining town",
               "cathedral city", "garrison town"]
_CITY_KNOWN = ["old harbour", "medieval cathedral", "covered market", "stone bridges",
               "botanical garden", "fish market", "castle", "wooden churches",
               "hot springs", "canals", "vineyards", "ski slopes", "sandy beaches",
               "lighthouse", "shipyards", "glass factories", "clock tower",
               "opera house", "salt mines", "flower market"]
_CIVIC = ["bridge", "tunnel", "library", "concert hall", "swimming pool", "hospital",
          "primary school", "museum", "park", "tram line", "bus station",
          "sports centre", "fire station", "market hall", "car park", "sea wall",
          "cycle path", "ferry terminal", "housing estate", "water treatment plant"]
_COMPLAINTS = ["the noise from the port", "the lack of parking", "rising rents",
               "slow buses", "potholes in the roads", "the smell from the paper mill",
               "long queues at the hospital", "the cost of housing", "crowded trains",
               "the closure of the post office", "litter in the parks",
               "the price of heating"]
_COST_ITEMS = ["energy", "steel", "transport", "wages", "rent", "paper", "fuel",
               "insurance", "raw materials", "shipping"]
_DEAL_ADJ = ["five-year", "ten-year", "long-term", "joint", "surprise", "landmark"]
_SUBJECTS = ["physics", "chemistry", "economics", "history", "law", "medicine",
             "biology", "mathematics", "architecture", "engineering", "geology",
             "philosophy", "music", "journalism", "computer science",
             "marine biology", "linguistics", "agriculture"]
_HOBBIES = ["sailing", "chess", "gardening", "hiking", "cycling", "painting",
            "fishing", "baking", "swimming", "photography", "running",
            "birdwatching", "pottery", "climbing", "rowing", "woodwork",
            "cooking", "playing the violin", "singing in a choir", "skiing"]
_TRAITS = ["patient", "ambitious", "modest", "generous", "stubborn", "funny",
           "careful", "demanding", "calm", "curious", "loyal", "honest",
           "energetic", "shy", "precise", "warm", "cheerful", "quiet"]
_FAMILY = ["partner", "two children", "three children", "young son",
           "young daughter", "elderly mother", "two dogs", "cat",
           "twin sisters", "grandchildren"]
_SCIENCE_TOPICS = ["the migration of birds", "soil bacteria", "ocean currents",
                   "sleep and memory", "the spread of flu", "ancient trade routes",
                   "glacier melt", "bee populations", "battery chemistry",
                   "air pollution", "how children learn languages",
                   "coastal erosion", "the history of printing", "deep sea fish",
                   "fungal networks", "wheat yields", "earthquake warnings",
                   "solar storms", "river pollution", "old shipwrecks"]
_FINDINGS = ["the effect was stronger than expected",
             "older trees store more carbon than young ones",
             "most of the samples contained small pieces of plastic",
             "the problem had been growing for decades",
             "a simple change in diet made a large difference",
             "warmer winters were the main cause",
             "the old method worked almost as well as the new one",
             "the numbers had been underestimated for years",
             "the two groups behaved in very different ways",
             "noise levels affected the results"]
_BENEFICIARIES = ["farmers", "doctors", "city planners", "fishermen", "teachers",
                  "engineers", "patients", "sailors", "builders", "parents"]
_CROPS = ["wheat", "barley", "potatoes", "apples", "grapes", "cabbages", "oats", "pears"]
_AWARD_FIELDS = ["Architecture", "Literature", "Physics", "Design", "Journalism",
                 "Medicine", "Music", "Engineering"]

# Sports: team suffixes and player positions.
_TEAM_SUFFIXES = ["Rovers", "United", "Athletic", "Wanderers", "Harriers", "Albion",
                  "Town", "Spartans"]
_POSITIONS = ["striker", "midfielder", "defender", "goalkeeper", "winger"]

# Events: kind, the people who take part, plural.
_EVENT_KINDS = [
    ("Film Festival", "directors"), ("Jazz Festival", "musicians"),
    ("Book Fair", "writers"), ("Trade Fair", "exhibitors"),
    ("Marathon", "runners"), ("Design Week", "designers"),
    ("Food Festival", "chefs"), ("Science Week", "researchers"),
    ("Regatta", "sailors"), ("Chess Open", "players"),
    ("Folk Festival", "singers"), ("Light Festival", "artists"),
    ("Theatre Festival", "actors"), ("Winter Games", "athletes"),
]

# ---------------------------------------------------------------------------
# Invented names
# ---------------------------------------------------------------------------

# Hand-written countries: (name, adjective/demonym, currency in the plural).
_COUNTRIES = [
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

_CITY_ENDINGS = ["vik", "holm", "stad", "mere", "dal", "haven", "ford", "wick",
                 "borg", "lund", "ova", "enza", "ara", "by", "port", "heim", "ness",
                 "gate"]
# Surname endings deliberately share nothing with city endings, so the shape
# of a name is a (learnable) hint of its type.
_SURNAME_ENDINGS = ["en", "er", "ard", "ell", "ani", "ino", "ler", "ton",
                    "rin", "ssen", "mont", "ez", "is"]
_FEMALE_ENDINGS = ["a", "ia", "ine", "elle", "ora", "ina", "eth", "ette"]
_MALE_ENDINGS = ["an", "or", "im", "as", "en", "ik", "o", "ert", "us", "el"]
_BRAND_ENDINGS = ["ex", "ix", "on", "ica", "ara", "o", "an", "el", "ium", "ek"]
_MODEL_ENDINGS = ["o", "a", "is", "um", "ar", "en", "ix"]


# Syllable soup can produce real words or names; these are never used.  (Short
# names are the risky ones, hence also the minimum lengths below.)
_AVOID_NAMES = frozenset("""
gale hell hen den pine sine nan bastad lamex boris muller resto rosen robo
talon salon melon lemon demon baron tenor toner manor minor miner motor rotor
solar polar final canal total token taken given often seven omen robin saber
tiger timer linen women lima rome oslo bern riga kiev nice mali peru chad
sudan malta samoa tonga kenya ghana benin niger gabon congo
""".split())


def _pick(rng: random.Random, weighted: Sequence[Tuple[str, int]]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def _syllables(rng: random.Random, n: int) -> str:
    return "".join(_pick(rng, _ONSETS_W) + _pick(rng, _VOWELS_W) + _pick(rng, _CODAS_W)
                   for _ in range(n))


class _Namer:
    """Generates unique, pronounceable invented names.

    Names are checked against every other name and against the common-word
    lexicon so that a word is never both, say, a surname and a city (which
    would make the NER labels contradictory).
    """

    def __init__(self, rng: random.Random, reserved: Iterable[str]) -> None:
        self.rng = rng
        self.used = set(reserved) | _AVOID_NAMES

    def make(self, endings: Sequence[str], syllables: Tuple[int, int] = (1, 2),
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
def _lexicon_words() -> frozenset:
    """Every ordinary word of the grammar, so invented names never collide with one."""
    words = set()
    for text in [*_TOPIC_TEMPLATES.values(), _GENERIC_TEMPLATES]:
        for t in text:
            words.update(re.findall(r"[a-z]+", t.lower()))
    for lst in (_MONTHS, _WEEKDAYS, _SEASONS, _NUMBER_WORDS, _ORDINALS, _COLOURS,
                _CITY_KINDS, _CITY_KNOWN, _CIVIC, _COMPLAINTS, _COST_ITEMS, _SUBJECTS,
                _HOBBIES, _TRAITS, _FAMILY, _SCIENCE_TOPICS, _FINDINGS, _BENEFICIARIES,
                _CROPS, _AWARD_FIELDS, _TEAM_SUFFIXES, _POSITIONS, _TITLE_ADJ, _TITLE_NOUNS):
        for item in lst:
            words.update(item.lower().split())
    for base, forms in _VERBS.items():
        words.update((base,) + forms)
    for ind in _INDUSTRIES.values():
        for lst in ind.values():
            for item in lst:
                words.update(item.lower().split())
    for feats in _FEATURES.values():
        for f in feats:
            words.update(f.split())
    for pos, neg in _SENT_ADJ.values():
        words.update(pos + neg)
    for name, demonym, currency in _COUNTRIES:
        words.update((name.lower(), demonym.lower(), currency))
    return frozenset(words)


# ---------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Country:
    name: str
    demonym: str
    currency: str
    rivers: List[str] = field(default_factory=list)
    cities: List["_City"] = field(default_factory=list)


@dataclass(eq=False)
class _City:
    name: str
    country: _Country
    river: str
    kind: str
    known: str
    population: str
    capital: bool = False
    mayor: Optional["_Person"] = None
    mayor_since: int = 0
    council: Tuple[str, ...] = ()
    paper: Optional["_Org"] = None
    team: Optional["_Org"] = None
    university: Optional["_Org"] = None
    events: List["_Event"] = field(default_factory=list)
    hotel: str = ""


@dataclass(eq=False)
class _Org:
    name: Tuple[str, ...]
    kind: str  # company, university, team, paper, council
    city: _City
    industry: str = ""
    brand: str = ""
    founded: int = 0
    staff: int = 0
    ceo: Optional["_Person"] = None
    members: List["_Person"] = field(default_factory=list)
    products: List["_Product"] = field(default_factory=list)
    stadium: Tuple[str, ...] = ()


@dataclass(eq=False)
class _Person:
    first: str
    last: str
    pronoun: str
    role: str
    org: _Org
    born: int
    birth_city: _City
    subject: str
    university: _Org
    hobbies: Tuple[str, str]
    traits: Tuple[str, str]
    family: str
    prev_org: Optional[_Org] = None
    prev_years: int = 0
    award: Optional[Tuple[Tuple[str, ...], int]] = None

    @property
    def city(self) -> _City:
        return self.org.city


@dataclass(eq=False)
class _Product:
    name: Tuple[str, ...]
    org: _Org
    category: str
    launched: int
    colours: Tuple[str, str, str]


@dataclass(eq=False)
class _Event:
    name: Tuple[str, ...]
    city: _City
    participants: str
    month: str
    founded: int


@dataclass(eq=False)
class _World:
    countries: List[_Country]
    cities: List[_City]
    companies: List[_Org]
    universities: List[_Org]
    teams: List[_Org]
    papers: List[_Org]
    people: List[_Person]
    products: List[_Product]
    events: List[_Event]
    awards: List[Tuple[str, ...]]
    films: List[Tuple[str, ...]]
    restaurants: List[Tuple[str, ...]]


def _format_population(rng: random.Random) -> str:
    n = rng.choice([rng.randint(4, 99) * 1000, rng.randint(100, 950) * 1000])
    return f"{n:,}"


@functools.lru_cache(maxsize=1)
def _world() -> _World:
    """Build the invented world once; it is identical for every seed."""
    rng = random.Random(_WORLD_SEED)
    namer = _Namer(rng, _lexicon_words())

    countries = [_Country(n, d, c) for n, d, c in _COUNTRIES]
    for country in countries:
        country.rivers = [namer.make(["", "a", "e", "en", "is"], (1, 1), 4, 7)
                          for _ in range(2)]

    # Cities: 5 per country; the first one is the capital.
    cities: List[_City] = []
    for country in countries:
        for i in range(5):
            city = _City(namer.make(_CITY_ENDINGS, min_len=6), country, rng.choice(country.rivers),
                         rng.choice(_CITY_KINDS), rng.choice(_CITY_KNOWN),
                         _format_population(rng), capital=(i == 0))
            city.council = (city.name, "City", "Council")
            country.cities.append(city)
            cities.append(city)

    def new_surname() -> str:
        return namer.make(_SURNAME_ENDINGS, (1, 2), 5, 10)

    female = [namer.make(_FEMALE_ENDINGS, (1, 1), 3, 8) for _ in range(75)]
    male = [namer.make(_MALE_ENDINGS, (1, 1), 3, 8) for _ in range(75)]

    universities: List[_Org] = []
    for city in cities:
        if city.capital or city.kind == "university city" or rng.random() < 0.2:
            name = (("University", "of", city.name) if rng.random() < 0.75
                    else (city.name, "Institute", "of", "Technology"))
            city.university = _Org(name, "university", city, founded=rng.randint(1450, 1970))
            universities.append(city.university)

    companies: List[_Org] = []
    industries = list(_INDUSTRIES)
    for i in range(56):
        industry = industries[i % len(industries)]
        city = rng.choice(cities)
        brand = namer.make(_BRAND_ENDINGS, (1, 2), 5, 9)
        suffix = rng.choice(_INDUSTRIES[industry]["suffix"])
        org = _Org((brand, suffix), "company", city, industry=industry, brand=brand,
                   founded=rng.randint(1890, 2016),
                   staff=rng.choice([40, 120, 300, 850, 2000, 6500]))
        companies.append(org)

    papers = []
    for city in cities:
        if rng.random() < 0.5:
            city.paper = _Org((city.name, rng.choice(["Herald", "Courier", "Gazette", "Post"])),
                              "paper", city, founded=rng.randint(1820, 1990))
            papers.append(city.paper)

    teams = []
    for city in rng.sample(cities, 20):
        city.team = _Org((city.name, rng.choice(_TEAM_SUFFIXES)), "team", city,
                         founded=rng.randint(1880, 1960),
                         stadium=(new_surname(), rng.choice(["Park", "Arena", "Stadium"])))
        teams.append(city.team)

    people: List[_Person] = []

    def person(org: _Org, role: str) -> _Person:
        is_female = rng.random() < 0.5
        first = rng.choice(female if is_female else male)
        country_cities = org.city.country.cities
        birth_city = org.city if rng.random() < 0.4 else rng.choice(
            country_cities if rng.random() < 0.7 else cities)
        p = _Person(first, new_surname(), "she" if is_female else "he", role, org,
                    born=rng.randint(1950, 1998), birth_city=birth_city,
                    subject=rng.choice(_SUBJECTS), university=rng.choice(universities),
                    hobbies=tuple(rng.sample(_HOBBIES, 2)),  # type: ignore[arg-type]
                    traits=tuple(rng.sample(_TRAITS, 2)),  # type: ignore[arg-type]
                    family=rng.choice(_FAMILY))
        org.members.append(p)
        people.append(p)
        return p

    for org in companies:
        org.ceo = person(org, "chief executive")
        for role in rng.sample(_INDUSTRIES[org.industry]["roles"], 3):
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
        for pos in rng.sample(_POSITIONS, 4):
            person(org, pos)
    for city in cities:
        council = _Org(city.council, "council", city)
        city.mayor = person(council, "mayor")
        city.mayor_since = rng.randint(2008, 2022)
    for p in people:
        if p.org.kind in ("company", "university", "paper") and rng.random() < 0.6:
            p.prev_org = rng.choice(companies + universities)
            if p.prev_org is p.org:
                p.prev_org = None
            p.prev_years = rng.randint(2, 15)

    awards = [(new_surname(), "Prize", "for", f) for f in _AWARD_FIELDS]
    for p in rng.sample(people, len(people) // 5):
        p.award = (rng.choice(awards), rng.randint(max(p.born + 25, 1990), _NOW_YEAR - 1))

    products: List[_Product] = []
    for org in companies:
        cats = rng.sample(_INDUSTRIES[org.industry]["cats"], 2)
        for cat in cats[: rng.randint(1, 2)]:
            model = namer.make(_MODEL_ENDINGS, (1, 2), 5, 9)
            name = (org.brand, model) + ((str(rng.randint(2, 9)),) if rng.random() < 0.35 else ())
            launched = rng.randint(max(org.founded, 2005), _NOW_YEAR - 1)
            prod = _Product(name, org, cat, launched=launched,
                            colours=tuple(rng.sample(_COLOURS, 3)))  # type: ignore[arg-type]
            org.products.append(prod)
            products.append(prod)

    events: List[_Event] = []
    for kind, participants in _EVENT_KINDS:
        for city in rng.sample(cities, 2):
            ev = _Event((city.name,) + tuple(kind.split()), city, participants,
                        rng.choice(_MONTHS), rng.randint(1950, 2015))
            city.events.append(ev)
            events.append(ev)

    for city in cities:
        city.hotel = rng.choice(["Hotel {n}", "{n} Grand", "{n} Inn", "{n} Lodge"]).format(
            n=namer.make(_BRAND_ENDINGS, (1, 2), 4, 9))

    films = []
    for _ in range(40):
        form = rng.random()
        if form < 0.4:
            films.append(("The", rng.choice(_TITLE_ADJ), rng.choice(_TITLE_NOUNS)))
        elif form < 0.7:
            films.append(("The", rng.choice(_TITLE_NOUNS), "of", rng.choice(cities).name))
        else:
            films.append((namer.make(_MODEL_ENDINGS, (1, 2), 4, 8), rng.choice(_TITLE_NOUNS)))
    restaurants = []
    for _ in range(30):
        form = rng.random()
        n = namer.make(_BRAND_ENDINGS, (1, 2), 4, 9)
        if form < 0.35:
            restaurants.append(("Cafe", n))
        elif form < 0.7:
            restaurants.append((n, rng.choice(["Grill", "Kitchen", "Bistro", "Tavern"])))
        else:
            restaurants.append((new_surname(), "'s"))

    return _World(countries, cities, companies, universities, teams, papers, people,
                  products, events, awards, films, restaurants)


_TITLE_ADJ = ("Silent Hollow Last Northern Crimson Quiet Broken Hidden Distant Burning "
              "Frozen Salt Paper Iron Glass Winter Summer Long Bright Seventh").split()
_TITLE_NOUNS = ("Harbour Orchard Lighthouse Signal Crossing Garden Season Tide Road "
                "Voyage Letter Choir Machine Island Ferry Mountain Promise Frontier "
                "Archive Lantern").split()


# ---------------------------------------------------------------------------
# Template engine
# ---------------------------------------------------------------------------

# A span is a run of words plus its entity type ("" for ordinary words).
Span = Tuple[Tuple[str, ...], str]
SlotValue = Union[List[Span], Callable[["_Ctx"], List[Span]]]


def _e(words: Union[str, Sequence[str]], etype: str = "") -> List[Span]:
    """One span from a string or a word sequence."""
    ws = tuple(words.split()) if isinstance(words, str) else tuple(words)
    return [(ws, etype)]


@dataclass
class _Ctx:
    """Everything a template needs while rendering one document."""

    rng: random.Random
    tense: str  # "past", "present" or "future"
    year: int  # the document's year, so all its dates agree
    currency: str
    slots: Dict[str, SlotValue] = field(default_factory=dict)


_TOKEN_RE = re.compile(r"\{[^}]+\}|\[[^\]]+\]|<[^>]+>|\S+")


@dataclass(frozen=True)
class _Template:
    """A compiled sentence production.

    Syntax: ``{slot}`` fills in a slot, ``<verb>`` / ``<verb/pl>`` inflects a
    verb for the document's tense and a singular/plural subject (``/now``: use
    the present instead of the future, as in quotes), ``<will>`` is
    ``would`` in past documents (reported speech), ``[a b|c]`` picks one
    alternative, and ``{#noun}`` is a count with a correctly inflected noun.
    """

    parts: Tuple[Tuple[str, object], ...]
    needs: frozenset

    @staticmethod
    def compile(text: str) -> "_Template":
        parts: List[Tuple[str, object]] = []
        needs = set()
        for tok in _TOKEN_RE.findall(text):
            if tok.startswith("{") and len(tok) > 2:
                name = tok[1:-1]
                parts.append(("slot", name))
                if not name.startswith("#"):
                    needs.add(name)
            elif tok.startswith("[") and len(tok) > 2:
                options = tuple(_Template.compile(o) for o in tok[1:-1].split("|"))
                for o in options:
                    needs |= o.needs
                parts.append(("choice", options))
            elif tok.startswith("<") and len(tok) > 2:
                base, *flags = tok[1:-1].split("/")
                if base != "will" and base not in _VERBS:
                    raise ValueError(f"unknown verb {base!r} in template {text!r}")
                parts.append(("verb", (base, "pl" in flags, "now" in flags)))
            else:
                parts.append(("word", tok))
        return _Template(tuple(parts), frozenset(needs))

    def usable(self, ctx: _Ctx) -> bool:
        return all(n in ctx.slots or n in _COMMON_SLOTS for n in self.needs)

    def render(self, ctx: _Ctx) -> List[Span]:
        out: List[Span] = []
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


def _inflect(tense: str, base: str, plural: bool, now: bool = False) -> Tuple[str, ...]:
    if now and tense == "future":
        tense = "present"
    if base == "will":
        return ("would",) if tense == "past" else ("will",)
    third, past = _VERBS[base]
    if tense == "future":
        return ("will", base)
    if base == "be":
        if tense == "past":
            return ("were",) if plural else ("was",)
        return ("are",) if plural else ("is",)
    if tense == "past":
        return (past,)
    return (base,) if plural else (third,)


def _count_phrase(ctx: _Ctx, spec: str) -> List[Span]:
    """``{#noun}`` or ``{#noun:lo-hi}``: a number and a noun that agrees with it."""
    noun, _, rng_spec = spec.partition(":")
    lo, hi = (int(x) for x in rng_spec.split("-")) if rng_spec else (1, 12)
    n = ctx.rng.randint(lo, hi)
    number = _NUMBER_WORDS[n] if n <= 12 and ctx.rng.random() < 0.7 else str(n)
    return _e(f"{number} {noun if n == 1 else _plural(noun)}")


def _fill(name: str, ctx: _Ctx) -> List[Span]:
    if name.startswith("#"):
        return _count_phrase(ctx, name[1:])
    value = ctx.slots[name] if name in ctx.slots else _COMMON_SLOTS[name]
    return value(ctx) if callable(value) else value


def _when(ctx: _Ctx) -> List[Span]:
    """A time expression that agrees with the document's tense."""
    r = ctx.rng
    if ctx.tense == "past":
        options = [f"last {r.choice(_SEASONS)}", f"in {ctx.year}", f"on {r.choice(_WEEKDAYS)}",
                   f"in {r.choice(_MONTHS)} {ctx.year}", f"on {_date(ctx)}",
                   f"{r.choice(_NUMBER_WORDS[2:6])} weeks ago", "last week", "last month"]
    elif ctx.tense == "present":
        options = [f"this {r.choice(_SEASONS)}", "this week", "this month", "today",
                   f"this {r.choice(_WEEKDAYS)}", "this year"]
    else:
        options = [f"next {r.choice(_SEASONS)}", "next year", f"in {r.choice(_MONTHS)} {ctx.year}",
                   "next month", "later this year", f"in {ctx.year}", f"on {_date(ctx)}"]
    return _e(r.choice(options))


def _date(ctx: _Ctx) -> str:
    return f"{ctx.rng.randint(1, 28)} {ctx.rng.choice(_MONTHS)} {ctx.year}"


def _money(ctx: _Ctx) -> List[Span]:
    r = ctx.rng
    amount = str(r.randint(2, 950)) if r.random() < 0.6 else f"{r.randint(1, 9)}.{r.randint(1, 9)}"
    return _e(f"{amount} {r.choice(['million', 'million', 'billion'])} {ctx.currency}")


def _price(ctx: _Ctx) -> List[Span]:
    amount = ctx.rng.choice([15, 25, 40, 60, 90, 120, 150, 240, 400, 750, 1200])
    return _e(f"{amount} {ctx.currency}")


_COMMON_SLOTS: Dict[str, Callable[[_Ctx], List[Span]]] = {
    "when": _when,
    "date": lambda c: _e(_date(c)),
    "year": lambda c: _e(str(c.year)),
    "later_year": lambda c: _e(str(c.year + c.rng.randint(1, 3))),
    "old_year": lambda c: _e(str(c.year - c.rng.randint(5, 40))),
    "month": lambda c: _e(c.rng.choice(_MONTHS)),
    "weekday": lambda c: _e(c.rng.choice(_WEEKDAYS)),
    "season": lambda c: _e(c.rng.choice(_SEASONS)),
    "pct": lambda c: _e(str(c.rng.randint(2, 40))),
    "n": lambda c: _e(str(c.rng.randint(12, 480))),
    "big_n": lambda c: _e(f"{c.rng.randint(2, 90) * 1000:,}"),
    "money": _money,
    "price": _price,
    "quarter": lambda c: _e(c.rng.choice(_QUARTERS)),
    "ordinal": lambda c: _e(c.rng.choice(_ORDINALS[:6])),
    "civic": lambda c: _e(c.rng.choice(_CIVIC)),
    "complaint": lambda c: _e(c.rng.choice(_COMPLAINTS)),
    "cost_item": lambda c: _e(c.rng.choice(_COST_ITEMS)),
    "deal_adj": lambda c: _e(c.rng.choice(_DEAL_ADJ)),
    "topic": lambda c: _e(c.rng.choice(_SCIENCE_TOPICS)),
    "finding": lambda c: _e(c.rng.choice(_FINDINGS)),
    "beneficiary": lambda c: _e(c.rng.choice(_BENEFICIARIES)),
    "crop": lambda c: _e(c.rng.choice(_CROPS)),
    "temp": lambda c: _e(str(c.rng.randint(-18, 38))),
    "minutes": lambda c: _e(str(c.rng.choice([5, 10, 15, 20, 30, 45, 60]))),
}


# ---------------------------------------------------------------------------
# Slot bundles for entities
# ---------------------------------------------------------------------------


def _org_ref(org: _Org) -> List[Span]:
    """An organisation as it appears mid-sentence: universities take "the"."""
    spans = _e(org.name, "ORG")
    return _e("the") + spans if org.kind == "university" else spans


def _org_slots(key: str, org: _Org) -> Dict[str, SlotValue]:
    s: Dict[str, SlotValue] = {
        key: _e(org.name, "ORG"),
        f"{key}.city": _e(org.city.name, "LOC"),
        f"{key}.country": _e(org.city.country.name, "LOC"),
        f"{key}.nat": _e(org.city.country.demonym, "MISC"),
    }
    if org.kind == "company":
        s[f"{key}.industry"] = _e(org.industry)
        s[f"{key}.founded"] = _e(str(org.founded))
        s[f"{key}.staff"] = _e(f"{org.staff:,}")
        s[f"{key}.brand"] = _e(org.brand, "ORG")
    if org.ceo is not None:
        s[f"{key}.ceo"] = _e((org.ceo.first, org.ceo.last), "PER")
        s[f"{key}.ceo.last"] = _e(org.ceo.last, "PER")
    if org.products:
        prod = org.products[0]
        s[f"{key}.product"] = _e(prod.name, "MISC")
        s[f"{key}.pcat"] = _e(prod.category)
        s[f"{key}.pcats"] = _e(_plural(prod.category))
    if org.stadium:
        s[f"{key}.stadium"] = _e(org.stadium, "LOC")
    return s


def _city_slots(key: str, city: _City) -> Dict[str, SlotValue]:
    s: Dict[str, SlotValue] = {
        key: _e(city.name, "LOC"),
        f"{key}.country": _e(city.country.name, "LOC"),
        f"{key}.nat": _e(city.country.demonym, "MISC"),
        f"{key}.river": _e(city.river, "LOC"),
        f"{key}.kind": _e(city.kind),
        f"{key}.known": _e(city.known),
        f"{key}.pop": _e(city.population),
        f"{key}.council": _e(city.council, "ORG"),
        f"{key}.airport": _e((city.name, "Airport"), "LOC"),
        f"{key}.hotel": _e(city.hotel, "LOC"),
    }
    if city.capital:
        # Only capitals get this slot, so only they can use the "capital of" line.
        s[f"{key}.capital"] = _e(city.name, "LOC")
    if city.mayor is not None:
        s[f"{key}.mayor"] = _e((city.mayor.first, city.mayor.last), "PER")
        s[f"{key}.mayor.last"] = _e(city.mayor.last, "PER")
        s[f"{key}.mayor_since"] = _e(str(city.mayor_since))
    for attr in ("paper", "team", "university"):
        org = getattr(city, attr)
        if org is not None:
            s[f"{key}.{attr}"] = _e(org.name, "ORG")
    if city.events:
        s[f"{key}.event"] = _e(city.events[0].name, "MISC")
        s[f"{key}.event.month"] = _e(city.events[0].month)
    return s


def _person_slots(key: str, p: _Person) -> Dict[str, SlotValue]:
    s: Dict[str, SlotValue] = {
        key: _e((p.first, p.last), "PER"),
        f"{key}.first": _e(p.first, "PER"),
        f"{key}.last": _e(p.last, "PER"),
        f"{key}.pron": _e(p.pronoun),
        f"{key}.poss": _e("her" if p.pronoun == "she" else "his"),
        f"{key}.role": _e(p.role),
        f"{key}.org": _org_ref(p.org),
        f"{key}.city": _e(p.city.name, "LOC"),
        f"{key}.nat": _e(p.city.country.demonym, "MISC"),
        f"{key}.birthcity": _e(p.birth_city.name, "LOC"),
        f"{key}.born": _e(str(p.born)),
        f"{key}.subject": _e(p.subject),
        f"{key}.uni": _e(p.university.name, "ORG"),
        f"{key}.hobby": _e(p.hobbies[0]),
        f"{key}.hobby2": _e(p.hobbies[1]),
        f"{key}.trait": _e(p.traits[0]),
        f"{key}.trait2": _e(p.traits[1]),
        f"{key}.family": _e(p.family),
    }
    if p.prev_org is not None:
        s[f"{key}.prev_org"] = _org_ref(p.prev_org)
        s[f"{key}.prev_years"] = _e(str(p.prev_years))
    if p.award is not None:
        s[f"{key}.award"] = _e(p.award[0], "MISC")
        s[f"{key}.award_year"] = _e(str(p.award[1]))
    return s


def _product_slots(key: str, prod: _Product) -> Dict[str, SlotValue]:
    feats = _FEATURES[prod.category]
    return {
        key: _e(prod.name, "MISC"),
        f"{key}.cat": _e(prod.category),
        f"{key}.cats": _e(_plural(prod.category)),
        f"{key}.launched": _e(str(prod.launched)),
        f"{key}.colour": _e(prod.colours[0]),
        f"{key}.colour2": _e(prod.colours[1]),
        f"{key}.colour3": _e(prod.colours[2]),
        f"{key}.feat": lambda c: _e(c.rng.choice(feats)),
        f"{key}.feat2": lambda c: _e(c.rng.choice(feats)),
    }


def _event_slots(key: str, ev: _Event) -> Dict[str, SlotValue]:
    return {
        key: _e(ev.name, "MISC"),
        f"{key}.city": _e(ev.city.name, "LOC"),
        f"{key}.month": _e(ev.month),
        f"{key}.founded": _e(str(ev.founded)),
        f"{key}.who": _e(ev.participants),
    }


# ---------------------------------------------------------------------------
# Sentence productions, grouped by document topic
# ---------------------------------------------------------------------------

_TOPIC_TEMPLATES: Dict[str, List[str]] = {
    "company": [
        "{o} is a {o.nat} {o.industry} company based in {o.city} .",
        "{o} was founded in {o.founded} and employs about {o.staff} people .",
        "{o.ceo} , the chief executive of {o} , <announce> a new {o.pcat} {when} .",
        "The company <report> revenue of {money} for the {quarter} quarter , up {pct} percent"
        " from a year earlier .",
        "Shares of {o} [<rise/pl>|<fall/pl>] {pct} percent after the announcement .",
        "{o} <open> a new office in {c2} , its first outside {o.country} .",
        "{p} <join> {o} as a {p.role} {when} .",
        "{o} <hire> {#new worker:20-400} at its headquarters in {o.city} .",
        "According to {p} , the {o.product} <sell> well in {c2.country} .",
        "{o} and {o2} <sign/pl> a {deal_adj} agreement to develop {o.pcats} together .",
        "The board of directors <approve> the plan on {date} .",
        "{o.ceo.last} <tell> reporters that the company <will> expand into {c2.country} .",
        "\" We are proud of what our team has built , \" <say/now> {o.ceo} .",
        "{o} <supply> {o.pcats} to customers in {c2.country} and {o.country} .",
        "The {o.product} remains the best selling {o.pcat} that {o} makes .",
        "Unions in {o.city} <warn/pl> that the plan <will> cost {#job:20-300} .",
        "Profits <fall/pl> by {pct} percent because of higher costs for {cost_item} .",
        "Its main rival , {o2} , is based in {o2.city} .",
        "{p.last} , a {p.role} at the company , <say> demand for {o.pcats} <be> strong .",
        "The {o.nat} government <buy> a small stake in {o} for {money} .",
        "{o} <plan> to build a second factory near {o.city} by {later_year} .",
        "{o} <become> the largest {o.nat} maker of {o.pcats} {when} .",
        "{o} <compete> with {o2} for {nat} customers .",
    ],
    "city": [
        "{c} is a {c.kind} on the {c.river} river in {c.country} .",
        "{c.capital} is the capital of {c.country} and lies on the {c.river} river .",
        "About {c.pop} people live in {c} , which is known for its {c.known} .",
        "The council of {c} <approve> a new {civic} [over the {c.river} river|near the main"
        " station|in the old town|next to the harbour|on the edge of the city] .",
        "The mayor of {c} , {c.mayor} , <say> the work <will> be finished by {month}"
        " {later_year} .",
        "The new {civic} <will> cost about {money} and take {#year:1-6} to build .",
        "Residents of {c} <complain/pl> about {complaint} at a public meeting .",
        "Trains between {c} and {c2} <run/pl> every {minutes} minutes .",
        "{c.mayor} has been mayor of {c} since {c.mayor_since} .",
        "The {c.paper} <report> that rents in {c} <rise/pl> by {pct} percent .",
        "Tourists <visit/pl> {c} every {season} to see the {c.known} .",
        "{c} <host> the {c.event} every {c.event.month} .",
        "{c.council} <vote> to close the old {civic} on {weekday} .",
        "Heavy rain <cause> flooding along the {c.river} river near {c} .",
        "{c.mayor.last} <promise> to tackle {complaint} before the next election .",
        "Police in {c} <close> several streets for the {c.event} .",
        "{c} <welcome/pl> many {nat} visitors to the {c.event} .",
    ],
    "person": [
        "{p} was born in {p.birthcity} in {p.born} .",
        "{p.pron} studied {p.subject} at the {p.uni} before moving to {p.city} .",
        "{p.last} <work> as a {p.role} at {p.org} in {p.city} .",
        "{p.pron} <lead> a team of {#person:3-40} at {p.org} .",
        "{p.pron} <live> in {p.city} with {p.poss} {p.family} .",
        "In {p.poss} spare time , {p.first} <enjoy> {p.hobby} and {p.hobby2} .",
        "Colleagues <describe/pl> {p.first} as {p.trait} and {p.trait2} .",
        "{p} won the {p.award} in {p.award_year} .",
        "{p} , a {p.nat} {p.role} , <speak> at the {ev} in {ev.city} {when} .",
        "Before joining {p.org} , {p.pron} spent {p.prev_years} years at {p.prev_org} .",
        "{p.first} says that {p.poss} favourite place in {p.city} is the {p.city.known} .",
        "{p.pron} <publish> a book about {topic} {when} .",
        "{p.last} <receive> an honorary degree from the {p.uni} {when} .",
        "\" I have always loved {p.hobby} , \" <say/now> {p.first} .",
    ],
    "product": [
        "{o} <unveil> the {pr} , a new {pr.cat} , at the {ev} .",
        "The {pr} <cost> {price} and <come> in {pr.colour} , {pr.colour2} and {pr.colour3} .",
        "The {pr} is made at the company 's factory in {o.city} .",
        "Reviewers <praise/pl> its {pr.feat} but <criticise/pl> its {pr.feat2} .",
        "The {pr} <go> on sale in {o.country} on {date} .",
        "{o.ceo} <say> the {pr} <be> lighter and faster than its rivals .",
        "Early buyers <complain/pl> that the {pr.feat} <stop> working after a few weeks .",
        "Sales of the {pr} <reach/pl> {big_n} units in the first month .",
        "The {pr.feat} of the new {pr.cat} was designed by {p} , a {p.role} at {o} .",
        "Rival {o2} <plan> to launch a similar {pr.cat} {when} .",
        "The first {pr} was launched in {pr.launched} .",
        "The {o.nat} press <call> the {pr} the best {pr.cat} of the year .",
        "The {pr} <win> a design prize at the {ev} .",
    ],
    "event": [
        "The {ev} takes place in {ev.city} every {ev.month} .",
        "More than {big_n} visitors <attend/pl> the {ev} {when} .",
        "{nat} {ev.who} <perform/pl> on the main stage .",
        "The opening night <be> hosted by {p} , a {p.role} from {p.city} .",
        "Organisers <say/pl> ticket sales <be/pl> the best since {old_year} .",
        "The {ev} was first held in {ev.founded} .",
        "The main prize <go> to {p2} from {p2.city} .",
        "Hotels in {ev.city} <be/pl> fully booked for the whole week .",
        "The {ev} <be> sponsored by {o} and {ev.city.council} .",
        "Tickets for the {ev} <cost/pl> {price} .",
        "Several {ev.who} from {c2.country} <cancel/pl> their visit because of the weather .",
    ],
    "sports": [
        "{t} <beat> {t2} {score} in {t.city} on {weekday} .",
        "{t} <lead> 1 - 0 at half time .",
        "{pl} <score> twice in the second half .",
        "The coach of {t} , {t.ceo} , <say> the team <play> well .",
        "{t} <remain> {ordinal} in the league with {#point:10-60} .",
        "About {big_n} fans <watch/pl> the match at the {t.stadium} .",
        "{pl} , the {pl.nat} {pl.role} from {pl.birthcity} , <be> named player of the match .",
        "{t} <will> face {t2} in the cup final in {month} .",
        "The referee <send> off {pl2} after {#minute:10-85} .",
        "{t.ceo.last} <praise> the {pl.role} {pl.last} for {pl.poss} hard work .",
        "The {t.city} club was founded in {t.founded} .",
        "{pl2.last} <miss> a penalty in the first half .",
    ],
    "weather": [
        "Temperatures in {c} <reach/pl> {temp} degrees on {weekday} .",
        "Forecasters <warn/pl> of heavy rain and strong winds along the coast of {c.country} .",
        "Dense fog <delay> flights at {c.airport} .",
        "Snow <close> several roads in the hills above {c} .",
        "The {c.river} river <rise> to its highest level since {old_year} .",
        "Farmers near {c} <say/pl> the dry summer <damage> their {crop} .",
        "Schools in {c} <stay/pl> closed because of the storm .",
        "A strong wind <bring> down trees in {c} and {c2} .",
    ],
    "science": [
        "Researchers at the {u} <publish/pl> a study on {topic} .",
        "The team , led by {p} , <find> that {finding} .",
        "{p} is a {p.role} of {p.subject} at the {u} .",
        "The study <be> funded by {o} and the {u} .",
        "{p.last} <say> the results <will> help {beneficiary} in {u.country} .",
        "Other scientists <call/pl> the work [important|promising|surprising|careful] but"
        " <warn/pl> that more data <be> needed .",
        "The researchers <collect/pl> samples from {#site:4-60} along the {c.river} river .",
        "{p.first} <thank> {p.poss} colleagues at the {u} and in {c2} .",
        "The project <will> continue until {later_year} .",
    ],
    "travel": [
        "The {c.hotel} in {c} <offer> views of the {c.river} river and the {c.known} .",
        "Visitors to {c} can take a ferry to {c2} in about {#hour:1-9} .",
        "The old town of {c} is best explored on foot .",
        "A double room at the {c.hotel} <cost> {price} a night .",
        "The best time to visit {c} is in {c.event.month} , when the {c.event} takes place .",
        "Many {nat} visitors <travel/pl> to {c} by train from {c2} .",
        "From {c.airport} , buses <run/pl> to the city centre every {minutes} minutes .",
        "Guides in {c} <recommend/pl> a walk along the {c.river} river at sunset .",
    ],
}

# Sentences any document can use, to glue topics together.
_GENERIC_TEMPLATES = [
    "\" This is a good day for {c} , \" <say/now> {p} .",
    "The news <be> welcomed by {p} , a {p.role} at {p.org} .",
    "{p} could not be reached for comment .",
    "The {nat} ambassador <visit> {c} on {weekday} and <meet> {p} .",
    "{p} <decline> to comment on the report .",
    "A spokesperson for {p.org} <confirm> the news on {weekday} .",
    "Officials in {c.country} <expect/pl> more details {when} .",
    "The {c.paper} <publish> an interview with {p} on {weekday} .",
]

_TOPIC_WEIGHTS = {"company": 5, "city": 4, "person": 4, "product": 3, "event": 3,
                  "sports": 3, "weather": 2, "science": 3, "travel": 2}

# (past, present, future) weights: match reports are never written ahead of
# the match, and profiles and travel notes are not written in the future.
_TOPIC_TENSES = {"company": (6, 2, 2), "city": (6, 2, 2), "person": (7, 3, 0),
                 "product": (5, 2, 3), "event": (5, 2, 3), "sports": (8, 2, 0),
                 "weather": (5, 2, 3), "science": (7, 3, 0), "travel": (3, 7, 0)}


@functools.lru_cache(maxsize=1)
def _compiled() -> Dict[str, List[_Template]]:
    out = {t: [_Template.compile(s) for s in ts] for t, ts in _TOPIC_TEMPLATES.items()}
    out["generic"] = [_Template.compile(s) for s in _GENERIC_TEMPLATES]
    return out



def _zipf_choice(rng: random.Random, items: Sequence, skew: float = 0.8):
    """Pick with a Zipf-like bias so some entities recur often (as in real news)."""
    weights = [1.0 / (i + 1) ** skew for i in range(len(items))]
    return rng.choices(items, weights)[0]


def _new_document(world: _World, rng: random.Random
                  ) -> Tuple[_Ctx, List[_Template], List[_Template]]:
    """Choose a topic, its main entities and a tense; return context + productions."""
    topics = list(_TOPIC_WEIGHTS)
    topic = rng.choices(topics, [_TOPIC_WEIGHTS[t] for t in topics])[0]
    tense = rng.choices(["past", "present", "future"], _TOPIC_TENSES[topic])[0]
    year = {"past": rng.randint(2008, _NOW_YEAR - 1), "present": _NOW_YEAR,
            "future": rng.randint(_NOW_YEAR + 1, _NOW_YEAR + 5)}[tense]

    slots: Dict[str, SlotValue] = {}
    if topic == "sports":
        t, t2 = rng.sample(world.teams, 2)
        players = [m for m in t.members if m is not t.ceo]
        pl, pl2 = rng.sample(players, 2)
        slots.update(_org_slots("t", t))
        slots.update(_org_slots("t2", t2))
        slots["t.founded"] = _e(str(t.founded))
        # One result per match report, so every sentence agrees with it (the
        # winner scores at least twice because a player "scored twice").
        slots["score"] = _e(f"{rng.randint(2, 5)} - {rng.randint(0, 1)}")
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
    slots["p.city.known"] = _e(person.city.known)
    p2 = rng.choice(world.people)
    slots.update(_person_slots("p2", p2))
    slots["nat"] = _e(rng.choice(world.countries).demonym, "MISC")

    ctx = _Ctx(rng, tense, year, city.country.currency, slots)
    compiled = _compiled()
    pool = [t for t in compiled[topic] if t.usable(ctx)]
    generic = [t for t in compiled["generic"] if t.usable(ctx)]
    return ctx, pool, generic


def _finish(spans: List[Span]) -> Tuple[List[str], List[str]]:
    """Flatten spans into words and IOB2 tags, fixing a/an and capitalisation."""
    words: List[str] = []
    tags: List[str] = []
    for ws, etype in spans:
        for i, w in enumerate(ws):
            words.append(w)
            tags.append("O" if not etype else ("B-" if i == 0 else "I-") + etype)
    _fix_articles(words)
    if words and words[0][0].islower():
        words[0] = words[0][0].upper() + words[0][1:]
    return words, tags


def _fix_articles(words: List[str]) -> None:
    """Turn "a" into "an" before a vowel sound (templates always write "a")."""
    for i in range(len(words) - 1):
        if words[i] in ("a", "A") and _starts_with_vowel_sound(words[i + 1]):
            words[i] += "n"


def _starts_with_vowel_sound(word: str) -> bool:
    w = word.lower()
    if w.startswith(("uni", "use", "eu", "one")):  # "a university", "a one-off"
        return False
    return w[0] in "aeiou" or w.startswith(("hour", "honest", "8", "11", "18"))


def _generate_document(world: _World, rng: random.Random) -> List[Tuple[List[str], List[str]]]:
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
    return [_finish(t.render(ctx)) for t in chosen]


# ---------------------------------------------------------------------------
# Part-of-speech and chunk tags for the CoNLL files
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _pos_table() -> Dict[str, str]:
    """A coarse word -> Penn tag table derived from the grammar's own lexicon."""
    table: Dict[str, str] = {}

    def add(tag: str, words: Union[str, Sequence[str]]) -> None:
        for w in (words.split() if isinstance(words, str) else words):
            for part in w.split():
                table.setdefault(part.lower(), tag)

    add("DT", "the a an this these every each all several some no")
    add("NNP", _MONTHS + _WEEKDAYS)
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
    for base, (third, past) in _VERBS.items():
        add("VBD", past)
        add("VBZ", third)
        add("VB", base)
    add("JJ", _TRAITS + _COLOURS + _DEAL_ADJ +
        "many best largest new old main local large small good first second third fourth fifth "
        "sixth last next public proud heavy strong dense dry highest important "
        "similar favourite few hard whole spare honorary fine higher lighter faster "
        "busy quiet coastal medieval sandy double selling early other big".split())
    add("CD", _NUMBER_WORDS)
    add("NN", [w for lst in (_CIVIC, _SUBJECTS, _HOBBIES, _COST_ITEMS, _CITY_KINDS, _CITY_KNOWN)
               for w in lst])
    return table


_NP_TAGS = {"DT", "JJ", "NN", "NNS", "NNP", "NNPS", "CD", "PRP", "PRP$", "POS"}
_VP_TAGS = {"MD", "VB", "VBD", "VBZ", "VBP", "VBN", "VBG", "RB", "TO"}


def _pos_tags(words: Sequence[str], tags: Sequence[str]) -> List[str]:
    table = _pos_table()
    out: List[str] = []
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


def _chunk_tags(pos: Sequence[str]) -> List[str]:
    """Very small chunker: runs of NP-ish, VP-ish and preposition tags."""
    out: List[str] = []
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


# ---------------------------------------------------------------------------
# Sentiment grammar
# ---------------------------------------------------------------------------

# Adjective classes: (positive, negative).  Aspects pick the class that fits
# them, so "the soup was bland" and "the staff were rude" but never
# "the prices were rude".
_SENT_ADJ: Dict[str, Tuple[List[str], List[str]]] = {
    "generic": ("excellent superb wonderful brilliant great fantastic lovely impressive "
                "outstanding good decent pleasant".split(),
                "awful terrible dreadful poor disappointing mediocre dull bad weak "
                "unpleasant".split()),
    "story": ("gripping clever witty original moving tense".split(),
              "predictable tedious confusing silly slow clumsy".split()),
    "perf": ("convincing moving charming believable natural".split(),
             "wooden flat unconvincing lifeless stiff".split()),
    "look": ("gorgeous stunning beautiful striking".split(),
             "cheap ugly distracting messy".split()),
    "taste": ("delicious fresh tasty flavourful".split(),
              "bland greasy stale cold overcooked salty".split()),
    "people": ("friendly helpful attentive welcoming".split(),
               "rude unhelpful slow careless".split()),
    "price": ("reasonable fair modest".split(), "steep outrageous excessive".split()),
    "room": ("spotless comfortable spacious quiet cosy".split(),
             "dirty cramped shabby damp noisy".split()),
    "place": ("perfect stunning convenient".split(), "inconvenient dreary depressing".split()),
    "tech": ("reliable fast sturdy sharp responsive solid".split(),
             "flimsy slow unreliable fragile buggy clunky".split()),
    "make": ("sturdy comfortable soft durable practical".split(),
             "flimsy uncomfortable scratchy shoddy fragile".split()),
}

# Which adjective class fits the parts of each industry's products.
_INDUSTRY_ADJ = {"food": "taste", "furniture": "make", "clothing": "make",
                 "pharmaceutical": "generic", "banking": "generic"}

# Domain -> [(aspect, is it plural, adjective class)].  Products use their
# category's features instead (see _FEATURES).
_SENT_ASPECTS: Dict[str, List[Tuple[str, bool, str]]] = {
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
_INTENSIFIERS = "very really truly quite extremely incredibly rather so".split()
_LOVE = ("loved enjoyed adored liked".split(), "hated disliked".split())


class _Review:
    """Builds one review sentence with a known polarity."""

    def __init__(self, world: _World, rng: random.Random) -> None:
        self.rng = rng
        self.domain = rng.choice(["film", "restaurant", "hotel", "product"])
        if self.domain == "product":
            prod = rng.choice(world.products)
            self.target = " ".join(("the",) + prod.name)
            self.noun = prod.category
            cls = _INDUSTRY_ADJ.get(prod.org.industry, "tech")
            self.aspects = [(f, f.endswith("s") and not f.endswith(("ss", "lens", "focus")), cls)
                            for f in _FEATURES[prod.category]]
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
        return self.rng.choice(_SENT_ADJ[cls][0 if positive else 1])

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
        """``the <aspect> was <predicate>``; ``avoid`` is the previous clause's aspect."""
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
        _fix_articles(words)
        words[0] = words[0][0].upper() + words[0][1:]
        return " ".join(words)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def corpus_documents(seed: int = 0, num_documents: int = 600) -> List[List[str]]:
    """Generate ``num_documents`` documents of 3-12 space-tokenised sentences each."""
    world = _world()
    rng = random.Random(_derive_seed(seed, "corpus"))
    return [[" ".join(words) for words, _ in _generate_document(world, rng)]
            for _ in range(num_documents)]


def write_corpus(directory: PathLike, seed: int = 0, num_files: int = 4,
                 num_documents: int = 600) -> List[str]:
    """Write ``corpus_00.txt``, ``corpus_01.txt`` ... into ``directory``.

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


def ner_sentences(seed: int = 0, num_sentences: int = 2000) -> List[Tuple[List[str], List[str]]]:
    """Sentences from the same grammar with IOB2 tags (PER, LOC, ORG, MISC)."""
    world = _world()
    rng = random.Random(_derive_seed(seed, "ner"))
    out: List[Tuple[List[str], List[str]]] = []
    while len(out) < num_sentences:
        for words, tags in _generate_document(world, rng):
            n_ent = sum(t.startswith("B-") for t in tags)
            # Favour entity-rich sentences but keep a few plain ones, like real
            # NER data where many sentences have one or no entity.
            keep = n_ent >= 2 or (n_ent == 1 and rng.random() < 0.3) or rng.random() < 0.03
            if keep and len(out) < num_sentences:
                out.append((words, tags))
    return out


def write_conll(path: PathLike, sentences: Sequence[Tuple[Sequence[str], Sequence[str]]]) -> None:
    """Write sentences in CoNLL-2003 format: ``word POS chunk TAG`` per line."""
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


def sentiment_examples(seed: int = 0, num_examples: int = 2000) -> List[Tuple[str, int]]:
    """Review-like sentences labelled 1 (positive) or 0 (negative), balanced."""
    world = _world()
    rng = random.Random(_derive_seed(seed, "sentiment"))
    # Exactly balanced labels in random order.
    labels = [i % 2 for i in range(num_examples)]
    rng.shuffle(labels)
    out = []
    for label in labels:
        text = _Review(world, rng).sentence(bool(label))
        out.append((text, label))
    return out


def write_sentiment_tsv(path: PathLike, examples: Sequence[Tuple[str, int]]) -> None:
    """Write examples as a GLUE SST-2 style TSV with a ``sentence\\tlabel`` header."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in examples:
            if "\t" in text or "\n" in text:
                raise ValueError("sentence contains a tab or newline")
            f.write(f"{text}\t{int(label)}\n")


def write_all(directory: PathLike, seed: int = 0) -> Dict[str, str]:
    """Write every default data set under ``directory``; return their paths."""
    root = os.fspath(directory)
    paths = {
        "corpus_dir": os.path.join(root, "corpus"),
        "ner_train": os.path.join(root, "ner", "train.txt"),
        "ner_valid": os.path.join(root, "ner", "valid.txt"),
        "sentiment_train": os.path.join(root, "sentiment", "train.tsv"),
        "sentiment_dev": os.path.join(root, "sentiment", "dev.tsv"),
    }
    # Held-out sets use their own derived seed so they are not copies of train.
    held_out = _derive_seed(seed, "held-out")
    write_corpus(paths["corpus_dir"], seed)
    write_conll(paths["ner_train"], ner_sentences(seed, 2000))
    write_conll(paths["ner_valid"], ner_sentences(held_out, 400))
    write_sentiment_tsv(paths["sentiment_train"], sentiment_examples(seed, 2000))
    write_sentiment_tsv(paths["sentiment_dev"], sentiment_examples(held_out, 400))
    return paths
