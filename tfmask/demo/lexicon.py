"""The ordinary words of the demo grammar, and how they inflect.

Verbs with their third-person and past forms, noun plurals, "a" / "an", calendar and number
words, the industries (company suffixes, product categories, job titles) and the parts of each
product, the word lists the world and its sentences draw from, and the sentiment adjectives.
Invented names are checked against all of these (`names.lexicon_words`), so a word is never
both a name and a common word.
"""

from __future__ import annotations

_IRREGULAR_VERBS: dict[str, tuple[str, str]] = {
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


def _regular_forms(base: str) -> tuple[str, str]:
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


VERBS: dict[str, tuple[str, str]] = {v: _regular_forms(v) for v in _REGULAR_VERBS}
VERBS.update(_IRREGULAR_VERBS)

MONTHS = ("January February March April May June July August September "
          "October November December").split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
SEASONS = "spring summer autumn winter".split()
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven "
                "twelve").split()
ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()
QUARTERS = "first second third fourth".split()

# Irregular plurals; everything else takes -s / -es / -ies.
_PLURALS = {
    "child": "children", "person": "people", "bus": "buses", "staff": "staff",
    "series": "series", "fish": "fish", "sheep": "sheep", "headquarters": "headquarters",
    "man": "men", "woman": "women", "city": "cities", "ferry": "ferries",
    "knife": "knives", "shelf": "shelves", "leaf": "leaves",
}


def pluralize(noun: str) -> str:
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


def fix_articles(words: list[str]) -> None:
    """Turn "a" into "an" before a vowel sound (templates always write "a")."""
    for i in range(len(words) - 1):
        if words[i] in ("a", "A") and _starts_with_vowel_sound(words[i + 1]):
            words[i] += "n"


def _starts_with_vowel_sound(word: str) -> bool:
    w = word.lower()
    if w.startswith(("uni", "use", "eu", "one")):  # "a university", "a one-off"
        return False
    return w[0] in "aeiou" or w.startswith(("hour", "honest", "8", "11", "18"))


# Industries: company-name suffixes, product categories and typical job titles.
INDUSTRIES: dict[str, dict[str, list[str]]] = {
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
FEATURES: dict[str, list[str]] = {
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

COLOURS = ("black white silver grey red blue green yellow orange navy olive "
           "sand copper graphite").split()

CITY_KINDS = ["small port town", "busy industrial city", "quiet market town",
              "university city", "mountain town", "fishing town",
              "coastal city", "river port", "spa town", "old mining town",
              "cathedral city", "garrison town"]
CITY_KNOWN = ["old harbour", "medieval cathedral", "covered market", "stone bridges",
              "botanical garden", "fish market", "castle", "wooden churches",
              "hot springs", "canals", "vineyards", "ski slopes", "sandy beaches",
              "lighthouse", "shipyards", "glass factories", "clock tower",
              "opera house", "salt mines", "flower market"]
CIVIC = ["bridge", "tunnel", "library", "concert hall", "swimming pool", "hospital",
         "primary school", "museum", "park", "tram line", "bus station",
         "sports centre", "fire station", "market hall", "car park", "sea wall",
         "cycle path", "ferry terminal", "housing estate", "water treatment plant"]
COMPLAINTS = ["the noise from the port", "the lack of parking", "rising rents",
              "slow buses", "potholes in the roads", "the smell from the paper mill",
              "long queues at the hospital", "the cost of housing", "crowded trains",
              "the closure of the post office", "litter in the parks",
              "the price of heating"]
COST_ITEMS = ["energy", "steel", "transport", "wages", "rent", "paper", "fuel",
              "insurance", "raw materials", "shipping"]
DEAL_ADJ = ["five-year", "ten-year", "long-term", "joint", "surprise", "landmark"]
SUBJECTS = ["physics", "chemistry", "economics", "history", "law", "medicine",
            "biology", "mathematics", "architecture", "engineering", "geology",
            "philosophy", "music", "journalism", "computer science",
            "marine biology", "linguistics", "agriculture"]
HOBBIES = ["sailing", "chess", "gardening", "hiking", "cycling", "painting",
           "fishing", "baking", "swimming", "photography", "running",
           "birdwatching", "pottery", "climbing", "rowing", "woodwork",
           "cooking", "playing the violin", "singing in a choir", "skiing"]
TRAITS = ["patient", "ambitious", "modest", "generous", "stubborn", "funny",
          "careful", "demanding", "calm", "curious", "loyal", "honest",
          "energetic", "shy", "precise", "warm", "cheerful", "quiet"]
FAMILY = ["partner", "two children", "three children", "young son",
          "young daughter", "elderly mother", "two dogs", "cat",
          "twin sisters", "grandchildren"]
SCIENCE_TOPICS = ["the migration of birds", "soil bacteria", "ocean currents",
                  "sleep and memory", "the spread of flu", "ancient trade routes",
                  "glacier melt", "bee populations", "battery chemistry",
                  "air pollution", "how children learn languages",
                  "coastal erosion", "the history of printing", "deep sea fish",
                  "fungal networks", "wheat yields", "earthquake warnings",
                  "solar storms", "river pollution", "old shipwrecks"]
FINDINGS = ["the effect was stronger than expected",
            "older trees store more carbon than young ones",
            "most of the samples contained small pieces of plastic",
            "the problem had been growing for decades",
            "a simple change in diet made a large difference",
            "warmer winters were the main cause",
            "the old method worked almost as well as the new one",
            "the numbers had been underestimated for years",
            "the two groups behaved in very different ways",
            "noise levels affected the results"]
BENEFICIARIES = ["farmers", "doctors", "city planners", "fishermen", "teachers",
                 "engineers", "patients", "sailors", "builders", "parents"]
CROPS = ["wheat", "barley", "potatoes", "apples", "grapes", "cabbages", "oats", "pears"]
AWARD_FIELDS = ["Architecture", "Literature", "Physics", "Design", "Journalism",
                "Medicine", "Music", "Engineering"]

# Sports: team suffixes and player positions.
TEAM_SUFFIXES = ["Rovers", "United", "Athletic", "Wanderers", "Harriers", "Albion",
                 "Town", "Spartans"]
POSITIONS = ["striker", "midfielder", "defender", "goalkeeper", "winger"]

# Events: kind, the people who take part, plural.
EVENT_KINDS = [
    ("Film Festival", "directors"), ("Jazz Festival", "musicians"),
    ("Book Fair", "writers"), ("Trade Fair", "exhibitors"),
    ("Marathon", "runners"), ("Design Week", "designers"),
    ("Food Festival", "chefs"), ("Science Week", "researchers"),
    ("Regatta", "sailors"), ("Chess Open", "players"),
    ("Folk Festival", "singers"), ("Light Festival", "artists"),
    ("Theatre Festival", "actors"), ("Winter Games", "athletes"),
]

# Film titles ("The Hidden Harbour", "The Orchard of ...").
TITLE_ADJ = ("Silent Hollow Last Northern Crimson Quiet Broken Hidden Distant Burning "
             "Frozen Salt Paper Iron Glass Winter Summer Long Bright Seventh").split()
TITLE_NOUNS = ("Harbour Orchard Lighthouse Signal Crossing Garden Season Tide Road "
               "Voyage Letter Choir Machine Island Ferry Mountain Promise Frontier "
               "Archive Lantern").split()

# Sentiment adjective classes: (positive, negative).  Aspects pick the class
# that fits them, so "the soup was bland" and "the staff were rude" but never
# "the prices were rude".  They live here, not in `reviews`, because invented
# names must never be one of them either.
SENT_ADJ: dict[str, tuple[list[str], list[str]]] = {
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
