"""Token-level and span-level data: CoNLL-style NER sentences and SQuAD-style reading comprehension.

NER sentences come from templates whose slots are filled with multi-word names; tags are produced together
with the tokens (B- on the first token of a name, I- on the rest), so tokens and tags cannot drift apart.
SQuAD contexts are built piece by piece and every answer's character offset is recorded while the text is
joined, never searched for afterwards, so `answer_start` is exact even when a value appears twice.
"""

from __future__ import annotations

import random

PEOPLE_FIRST = [
    "Maria",
    "Kenji",
    "Aisha",
    "Min-jun",
    "Olivia",
    "Lars",
    "Priya",
    "Diego",
    "Fatima",
    "Jonas",
    "Seo-yeon",
    "Ahmed",
    "Chloe",
    "Mateus",
    "Ingrid",
    "Tariq",
    "Hana",
    "Samuel",
    "Lucia",
    "Wei",
]
PEOPLE_LAST = [
    "Gonzalez",
    "Watanabe",
    "Bello",
    "Kim",
    "Chen",
    "Eriksson",
    "Sharma",
    "Rossi",
    "Haddad",
    "Becker",
    "Park",
    "Okafor",
    "Dubois",
    "Silva",
    "Larsen",
    "Nguyen",
    "Tanaka",
    "Moreau",
    "Novak",
    "Ali",
]
ORGS = [
    "Northwind Traders",
    "Lumen Lane",
    "Acme Robotics",
    "Bluefin Bank",
    "Orchid Labs",
    "Globex",
    "Helios Energy",
    "Riverbend University",
    "Pine and Oak Studio",
    "Contoso",
    "Tidewater Logistics",
    "Kestrel Airlines",
    "Nimbus Systems",
    "Granite Health",
    "Silverline Media",
    "Hanbit Electronics",
]
LOCS = [
    "Paris",
    "New York",
    "Busan",
    "Nairobi",
    "Sao Paulo",
    "Berlin",
    "Cape Town",
    "Kyoto",
    "Buenos Aires",
    "Seoul",
    "Lake Geneva",
    "Toronto",
    "Lisbon",
    "Jeju Island",
    "Mexico City",
    "Oslo",
    "Singapore",
    "Cairo",
]
PRODUCTS = [
    "Aurora K2",
    "Nimbus H2",
    "Zephyr X1 drone",
    "PixelPad Pro",
    "Corvo Runner 3",
    "Tundra 40L backpack",
    "Halo Lamp",
    "Vela smartwatch",
    "Quill e-reader",
    "Orbit S speaker",
    "Atlas 7 tablet",
    "Breeze fan",
]

NER_TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last spring .",
    "{ORG} will launch the {PRODUCT} in {LOC} next month .",
    "According to {PER} , the {PRODUCT} sold out in {LOC} within hours .",
    "{PER} and {PER} met at the {ORG} office in {LOC} .",
    "The {PRODUCT} is made by {ORG} .",
    "I bought a {PRODUCT} from {ORG} while visiting {LOC} .",
    "{PER} , a spokesperson for {ORG} , declined to comment .",
    "{ORG} opened a new warehouse near {LOC} on Tuesday .",
    "{PER} reviewed the {PRODUCT} and called it excellent .",
    "Shares of {ORG} rose after the {PRODUCT} was announced .",
    "{PER} flew from {LOC} to {LOC} for the conference .",
    "The mayor of {LOC} thanked {ORG} for the donation .",
    "{PER} has led the design team at {ORG} since 2019 .",
    "Customers in {LOC} can now order the {PRODUCT} online .",
    "{ORG} hired {PER} as its new chief engineer .",
    "My sister {PER} lives in {LOC} and works for {ORG} .",
    "The {PRODUCT} will not be available in {LOC} until March .",
    "{PER} said the {PRODUCT} is lighter than its predecessor .",
    "After years in {LOC} , {PER} moved back to {LOC} .",
    "{ORG} and {ORG} signed a partnership in {LOC} .",
    "Yesterday {PER} returned the {PRODUCT} to the store .",
    "Researchers at {ORG} tested the {PRODUCT} in {LOC} .",
]
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-PRODUCT", "I-PRODUCT"]


def _person(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(PEOPLE_FIRST)
    return f"{rng.choice(PEOPLE_FIRST)} {rng.choice(PEOPLE_LAST)}"


def ner_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    pick = {
        "PER": lambda: _person(rng),
        "ORG": lambda: rng.choice(ORGS),
        "LOC": lambda: rng.choice(LOCS),
        "PRODUCT": lambda: rng.choice(PRODUCTS),
    }
    tokens: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for piece in rng.choice(NER_TEMPLATES).split():
        if piece.startswith("{") and piece.endswith("}"):
            kind = piece[1:-1]
            value = pick[kind]()
            while value in used:  # "{PER} and {PER} met": two different people
                value = pick[kind]()
            used.add(value)
            words = value.split()
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(piece)
            tags.append("O")
    tokens[0] = tokens[0][0].upper() + tokens[0][1:]
    return tokens, tags


def ner(seed: int, train: int, eval: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < train + eval:
        tokens, tags = ner_sentence(rng)
        key = " ".join(tokens)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"id": str(len(rows)), "tokens": tokens, "ner_tags": tags})
    return rows[:train], rows[train:]


class Context:
    """A paragraph joined from pieces, remembering where each named value starts."""

    def __init__(self) -> None:
        self.text = ""
        self.spans: dict[str, tuple[str, int]] = {}

    def add(self, *pieces: str | tuple[str, str]) -> None:
        for piece in pieces:
            if isinstance(piece, tuple):
                key, value = piece
                self.spans.setdefault(key, (value, len(self.text)))
                self.text += value
            else:
                self.text += piece


INDUSTRIES = ["furniture", "robotics", "payments", "outdoor gear", "coffee", "software", "bicycle", "solar energy"]
RIVERS = ["Alder", "Silver", "Maple", "Stone", "Willow", "Crane", "Amber"]
REGIONS = ["the northern highlands", "the eastern valley", "the coastal lowlands", "the southern plains"]
FESTIVALS = ["lantern festival", "cheese fair", "kite festival", "jazz week", "apple harvest market", "boat race"]
MONTHS = ["January", "March", "April", "May", "June", "August", "September", "October", "December"]
BUILDINGS = ["the old mill", "St. Anne's chapel", "the stone bridge", "the clock tower", "the river inn"]
NAME_A = [
    "Bright",
    "Cedar",
    "Falcon",
    "Harbor",
    "Iron",
    "Juniper",
    "Lark",
    "Meadow",
    "North",
    "Opal",
    "Quartz",
    "Raven",
    "Summit",
    "Thistle",
    "Umber",
    "Vale",
    "Willow",
    "Yarrow",
    "Zinc",
    "Copper",
]
NAME_B = ["works", "field", "stone", "brook", "gate", "wood", "ford", "ridge", "haven", "port"]
# device type -> plausible weight range in grams
DEVICES = {
    "wireless earbud": (4, 9),
    "e-reader": (150, 250),
    "fitness tracker": (20, 45),
    "portable projector": (400, 950),
    "smart thermostat": (120, 300),
    "camera drone": (240, 900),
}
PORTS = ["USB-C", "a magnetic cable", "a wireless charging pad", "micro-USB"]
COLORS = ["black and white", "sage green and sand", "navy, grey and coral", "matte black only"]


def _company(rng: random.Random, name: str) -> tuple[str, Context, list[tuple[str, str | None]]]:
    c = Context()
    founder = _person(rng)
    c.add(
        ("name", name),
        f" is a {rng.choice(INDUSTRIES)} company founded in ",
        ("year", str(rng.randint(1950, 2019))),
        " by ",
        ("founder", founder),
        ". Its headquarters are in ",
        ("city", rng.choice(LOCS)),
        ". The company employs about ",
        ("staff", f"{rng.randint(2, 95) * 10}"),
        " people and is best known for the ",
        ("product", rng.choice(PRODUCTS)),
        ".",
    )
    city2 = rng.choice([loc for loc in LOCS if loc != c.spans["city"][0]])
    c.add(" In ", ("year2", str(rng.randint(2020, 2025))), ", it opened a second office in ", ("city2", city2), ".")
    qs = [
        (f"When was {name} founded?", "year"),
        (f"Who founded {name}?", "founder"),
        (f"Where is {name} headquartered?", "city"),
        (f"How many people does {name} employ?", "staff"),
        (f"What product is {name} best known for?", "product"),
        (f"Where did {name} open its second office?", "city2"),
        (f"In which year did {name} open a second office?", "year2"),
        (f"Who is the chief executive of {name}?", None),
        (f"What was {name}'s revenue last year?", None),
    ]
    return name, c, qs


def _town(rng: random.Random, name: str) -> tuple[str, Context, list[tuple[str, str | None]]]:
    c = Context()
    river = rng.choice(RIVERS)
    c.add(
        ("name", name),
        " is a small town on the ",
        ("river", f"{river} River"),
        " in ",
        ("region", rng.choice(REGIONS)),
        ". It has a population of ",
        ("pop", f"{rng.randint(12, 98)},{rng.randint(0, 999):03d}"),
        ". The town is famous for its ",
        ("festival", rng.choice(FESTIVALS)),
        ", held every ",
        ("month", rng.choice(MONTHS)),
        ". Its oldest building is ",
        ("building", rng.choice(BUILDINGS)),
        ", built in ",
        ("built", str(rng.randint(1200, 1850))),
        ".",
    )
    qs = [
        (f"Which river is {name} on?", "river"),
        (f"Where is {name}?", "region"),
        (f"What is the population of {name}?", "pop"),
        (f"What is {name} famous for?", "festival"),
        (f"When is the {c.spans['festival'][0]} held?", "month"),
        (f"What is the oldest building in {name}?", "building"),
        (f"When was the oldest building in {name} built?", "built"),
        (f"Who is the mayor of {name}?", None),
        (f"Which airport serves {name}?", None),
    ]
    return name, c, qs


def _device(rng: random.Random, name: str) -> tuple[str, Context, list[tuple[str, str | None]]]:
    c = Context()
    kind = rng.choice(sorted(DEVICES))
    c.add(
        "The ",
        ("name", name),
        " is a ",
        ("type", kind),
        " made by ",
        ("maker", rng.choice(ORGS)),
        ". It weighs ",
        ("weight", f"{rng.randint(*DEVICES[kind])} grams"),
        " and its battery lasts up to ",
        ("battery", f"{rng.randint(4, 60)} hours"),
        ". It charges over ",
        ("port", rng.choice(PORTS)),
        " and comes in ",
        ("colors", rng.choice(COLORS)),
        ". It was released in ",
        ("released", f"{rng.choice(MONTHS)} {rng.randint(2018, 2025)}"),
        ".",
    )
    qs = [
        (f"What kind of device is the {name}?", "type"),
        (f"Who makes the {name}?", "maker"),
        (f"How much does the {name} weigh?", "weight"),
        (f"How long does the {name}'s battery last?", "battery"),
        (f"How is the {name} charged?", "port"),
        (f"Which colors does the {name} come in?", "colors"),
        (f"When was the {name} released?", "released"),
        (f"How much does the {name} cost?", None),
        (f"Is the {name} waterproof?", None),
    ]
    return name, c, qs


def squad(seed: int, train: int, eval: int) -> tuple[list[dict], list[dict]]:
    """Rows with id/title/context/question/answers; ~10% unanswerable (empty answer lists).

    Train and eval use different paragraphs (each entity name is used once), so eval measures reading,
    not memory of a context.
    """
    rng = random.Random(seed)
    names = [a + b for a in NAME_A for b in NAME_B]
    rng.shuffle(names)
    builders = [(_company, ""), (_town, ""), (_device, " {n}")]

    def make(total: int, prefix: str) -> list[dict]:
        rows: list[dict] = []
        while len(rows) < total:
            builder, suffix = rng.choice(builders)
            base = names.pop()
            name = base + suffix.format(n=rng.randint(1, 9)) if suffix else base
            title, ctx, questions = builder(rng, name)
            answerable = [q for q in questions if q[1] is not None]
            unanswerable = [q for q in questions if q[1] is None]
            picked = rng.sample(answerable, 5)
            if rng.random() < 0.55:
                picked.append(rng.choice(unanswerable))
            rng.shuffle(picked)
            for question, key in picked:
                if len(rows) >= total:
                    break
                if key is None:
                    answers = {"text": [], "answer_start": []}
                else:
                    value, start = ctx.spans[key]
                    answers = {"text": [value], "answer_start": [start]}
                rows.append(
                    {
                        "id": f"{prefix}-{len(rows):05d}",
                        "title": title,
                        "context": ctx.text,
                        "question": question,
                        "answers": answers,
                    }
                )
        return rows

    return make(train, "train"), make(eval, "eval")
