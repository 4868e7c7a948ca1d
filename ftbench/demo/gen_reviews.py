"""Product reviews and support tickets for the demo's classification datasets.

Reviews are assembled from an opener, one or two detail sentences and sometimes a closer, each drawn from a
bank of the review's sentiment, around one of many products, so the label is carried by ordinary sentiment
words (what a small encoder can learn in a few CPU minutes) while the wording keeps changing. Tickets for the
multi-label topics set join one complaint per topic. Everything takes a seeded `random.Random`, so the same
seed gives the same rows.
"""

from __future__ import annotations

import random

PRODUCTS = [
    "kettle",
    "blender",
    "desk lamp",
    "bluetooth speaker",
    "coffee grinder",
    "rice cooker",
    "air fryer",
    "backpack",
    "yoga mat",
    "electric toothbrush",
    "wireless mouse",
    "mechanical keyboard",
    "phone case",
    "water bottle",
    "frying pan",
    "hair dryer",
    "monitor stand",
    "throw blanket",
    "pair of running shoes",
    "pair of noise-cancelling headphones",
    "smart plug",
    "robot vacuum",
    "standing fan",
    "toaster",
    "chef's knife",
    "travel mug",
    "webcam",
    "laptop sleeve",
    "humidifier",
    "bedside clock",
]

POSITIVE_OPENERS = [
    "I love this {p}.",
    "Absolutely thrilled with my new {p}!",
    "This {p} exceeded my expectations.",
    "Best {p} I have ever owned.",
    "Really happy with this {p}.",
    "What a great {p}!",
    "I'm impressed by this {p}.",
    "Five stars for this {p}.",
    "My new {p} is fantastic.",
    "Bought the {p} last month and I'm delighted.",
    "Wonderful {p}, highly recommend it.",
]
POSITIVE_DETAILS = [
    "It works perfectly and feels very well made.",
    "Setup took five minutes and it has been flawless since.",
    "The build quality is excellent for the price.",
    "It is quiet, fast and easy to clean.",
    "Shipping was quick and the packaging was neat.",
    "It looks beautiful on my desk.",
    "Great value, and it does exactly what I wanted.",
    "The battery lasts for days, which is amazing.",
    "My whole family loves using it.",
    "It is sturdy, reliable and a joy to use every day.",
    "The instructions were clear and helpful.",
    "Customer service answered my question within an hour, very friendly.",
    "It arrived early and works like a charm.",
    "Comfortable, lightweight and really well designed.",
]
POSITIVE_CLOSERS = [
    "Would buy again.",
    "Highly recommended!",
    "Worth every penny.",
    "I already ordered one for my sister.",
    "Couldn't be happier.",
    "Great purchase.",
]
NEGATIVE_OPENERS = [
    "I regret buying this {p}.",
    "Very disappointed with this {p}.",
    "This {p} is terrible.",
    "Worst {p} I have ever bought.",
    "Do not waste your money on this {p}.",
    "Sadly, the {p} is a letdown.",
    "I'm unhappy with this {p}.",
    "My {p} broke almost immediately.",
    "Avoid this {p}.",
    "Returned the {p} after two days.",
    "Awful {p}, I would not recommend it.",
]
NEGATIVE_DETAILS = [
    "It stopped working after a week.",
    "The build quality is cheap and flimsy.",
    "It is loud, slow and hard to clean.",
    "It arrived damaged and customer service never replied.",
    "The battery dies within an hour, which is useless.",
    "It looks nothing like the photos.",
    "Poor value, and it does not do what the description promised.",
    "The instructions were confusing and incomplete.",
    "It overheats and smells like burning plastic.",
    "The buttons are stiff and it feels fragile.",
    "Delivery was two weeks late and the box was crushed.",
    "It broke the first time I dropped it.",
    "Uncomfortable, heavy and badly designed.",
    "The refund process was a nightmare.",
]
NEGATIVE_CLOSERS = [
    "Would not buy again.",
    "Save your money.",
    "Total waste of money.",
    "Very frustrating.",
    "One star is too generous.",
    "Sending it back.",
]
NEUTRAL_OPENERS = [
    "The {p} is okay.",
    "It's an average {p}.",
    "This {p} is fine, nothing special.",
    "The {p} does what it says.",
    "Mixed feelings about this {p}.",
    "Got the {p} yesterday.",
    "The {p} is neither great nor bad.",
    "A fairly ordinary {p}.",
    "The {p} arrived as described.",
]
NEUTRAL_DETAILS = [
    "It comes in a plain box with a short manual.",
    "The color matches the pictures on the website.",
    "Performance is about what you would expect at this price.",
    "I have only used it twice so far.",
    "It is a little bigger than I thought, but that is fine.",
    "It works, although I have not tested every feature.",
    "Delivery took the usual four days.",
    "Some features are useful, others I probably will not use.",
    "It replaced my old one and works about the same.",
    "The design is simple and standard.",
]
NEUTRAL_CLOSERS = [
    "Will update this review after a few weeks.",
    "It's fine for now.",
    "Nothing more to say.",
    "Time will tell.",
    "An acceptable purchase.",
]

KO_POSITIVE = [
    "이 제품 정말 마음에 들어요.",
    "품질이 기대 이상입니다.",
    "배송도 빠르고 포장도 꼼꼼했어요.",
    "가격 대비 최고예요.",
    "매일 잘 쓰고 있어요. 강력 추천합니다!",
    "디자인이 예쁘고 사용하기 편해요.",
    "가족 모두 만족하고 있어요.",
    "설치가 쉽고 작동도 완벽해요.",
]
KO_NEGATIVE = [
    "일주일 만에 고장 났어요.",
    "품질이 너무 실망스러워요.",
    "배송이 늦었고 상자가 찌그러져 왔어요.",
    "돈이 아까워요. 추천하지 않습니다.",
    "사진과 실물이 전혀 달라요.",
    "소음이 심하고 청소하기 어려워요.",
    "고객센터가 답변을 안 해요.",
    "환불 받고 싶어요. 최악입니다.",
]
KO_NEUTRAL = [
    "그냥 평범해요.",
    "가격만큼의 성능이에요.",
    "아직 두 번밖에 안 써봤어요.",
    "설명대로 도착했어요.",
    "나쁘지도 좋지도 않아요.",
    "기본적인 기능은 다 있어요.",
    "생각보다 조금 크지만 괜찮아요.",
]

# A mild remark of the other polarity, which the review then outweighs: keeps the task from being a word lookup.
CONTRASTS = {
    "positive": [
        "The box was a bit dented, but that hardly matters.",
        "It is slightly pricey, but it is worth it.",
        "I was sceptical at first, but it won me over.",
        "The manual is thin, but I did not need it.",
        "Delivery was a day late, but the product itself is excellent.",
    ],
    "negative": [
        "It looks nice, but that is the only good thing about it.",
        "The price seemed great, but you get what you pay for.",
        "The first day it worked fine, then it fell apart.",
        "Shipping was fast, sadly the product is poor.",
        "The color is lovely, but it is badly made.",
    ],
    "neutral": [],
}

BANKS = {
    "positive": (POSITIVE_OPENERS, POSITIVE_DETAILS, POSITIVE_CLOSERS, KO_POSITIVE),
    "negative": (NEGATIVE_OPENERS, NEGATIVE_DETAILS, NEGATIVE_CLOSERS, KO_NEGATIVE),
    "neutral": (NEUTRAL_OPENERS, NEUTRAL_DETAILS, NEUTRAL_CLOSERS, KO_NEUTRAL),
}


def review(rng: random.Random, label: str, korean: bool = False) -> str:
    """One review whose sentiment is `label`."""
    openers, details, closers, ko = BANKS[label]
    if korean:
        return " ".join(rng.sample(ko, rng.randint(2, 3)))
    parts = [rng.choice(openers).format(p=rng.choice(PRODUCTS))]
    parts += rng.sample(details, rng.randint(1, 2))
    if CONTRASTS[label] and rng.random() < 0.25:
        parts.insert(rng.randint(1, len(parts)), rng.choice(CONTRASTS[label]))
    if rng.random() < 0.5:
        parts.append(rng.choice(closers))
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def unique_reviews(
    rng: random.Random, labels: list[str], per_label: int, korean_share: float = 0.0
) -> list[tuple[str, str]]:
    """`per_label` distinct (text, label) rows for each label, interleaved in a shuffled order."""
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    for label in labels:
        count = 0
        while count < per_label:
            text = review(rng, label, korean=rng.random() < korean_share)
            if text in seen:
                continue
            seen.add(text)
            rows.append((text, label))
            count += 1
    rng.shuffle(rows)
    return rows


SENTIMENT_INSTRUCTIONS = [
    "Classify the sentiment of this product review.",
    "What is the sentiment of the following customer review?",
    "Read the review and label its sentiment as positive, negative or neutral.",
    "Is this review positive, negative, or neutral?",
    "Determine the sentiment expressed in the product review below.",
    "Label the customer's opinion in this review.",
]


def sentiment_alpaca(seed: int, train: int, eval: int) -> tuple[list[dict], list[dict]]:
    """Alpaca rows whose answer is exactly `Sentiment: <label>`; eval reviews never appear in train."""
    rng = random.Random(seed)
    labels = ["positive", "negative", "neutral"]
    per_label = -(-(train + eval) // 3)
    rows = unique_reviews(rng, labels, per_label, korean_share=0.1)
    out = [
        {"instruction": rng.choice(SENTIMENT_INSTRUCTIONS), "input": text, "output": f"Sentiment: {label}"}
        for text, label in rows
    ]
    return out[:train], out[train : train + eval]


def reviews(seed: int, train: int, eval: int) -> tuple[list[dict], list[dict]]:
    """Binary text/label rows (English: the demo encoder's vocabulary is English)."""
    rng = random.Random(seed)
    rows = unique_reviews(rng, ["positive", "negative"], -(-(train + eval) // 2))
    out = [{"text": text, "label": label} for text, label in rows]
    return out[:train], out[train : train + eval]


TOPIC_FRAGMENTS = {
    "billing": [
        "I was charged twice for order #{o}.",
        "My invoice shows {a} but the cart said less.",
        "The discount code did not apply at checkout.",
        "When will my refund reach my credit card?",
        "Why was I billed for express shipping?",
        "Can I pay for order #{o} with a gift card?",
        "The payment failed but the money left my account.",
        "Please send me a VAT receipt for my last purchase.",
        "I was charged {a} for a subscription I cancelled.",
        "My card was declined although it is valid.",
    ],
    "shipping": [
        "My parcel has not arrived after ten days.",
        "The tracking number for order #{o} does not work.",
        "Do you deliver to {c}?",
        "The courier left my box at the wrong address.",
        "How long does express delivery to {c} take?",
        "The package arrived with a torn box.",
        "Can I change the delivery address for order #{o}?",
        "Tracking says delivered but nothing is here.",
        "Is there free shipping on orders over 50 dollars?",
        "My order is stuck in customs in {c}.",
    ],
    "product": [
        "The {p} stopped working after a week.",
        "Does the {p} come with a warranty?",
        "The {p} looks different from the photos.",
        "Which size of {p} should I choose?",
        "My {p} makes a strange buzzing noise.",
        "Is the {p} compatible with European plugs?",
        "The manual for the {p} is missing.",
        "One part of the {p} is cracked.",
        "How do I clean the {p}?",
        "The {p} is smaller than described.",
    ],
    "account": [
        "I cannot log in to my account.",
        "How do I change the email address on my profile?",
        "I never received the password reset email.",
        "Please delete my account and my data.",
        "Someone else may have accessed my account.",
        "My loyalty points disappeared from my profile.",
        "How do I turn off the marketing emails?",
        "The app keeps logging me out.",
        "I want to merge my two accounts.",
        "Two-factor codes are not arriving on my phone.",
    ],
}
TOPICS = tuple(TOPIC_FRAGMENTS)
CITIES = ["Busan", "Lyon", "Toronto", "Nairobi", "Osaka", "Melbourne", "Oslo", "Austin", "Lisbon", "Incheon"]
CONNECTORS = [" ", " Also, ", " And ", " On top of that, ", " Another thing: "]
GREETINGS = ["", "", "Hi. ", "Hello! ", "Hi there. ", "Good morning. "]


def _fill(rng: random.Random, fragment: str) -> str:
    return fragment.format(
        o=rng.randint(10000, 99999),
        a=f"${rng.randint(12, 480)}.{rng.randint(0, 99):02d}",
        c=rng.choice(CITIES),
        p=rng.choice(PRODUCTS),
    )


def topics(seed: int, count: int) -> list[dict]:
    """Support tickets with one to three topics each; `labels` is the sorted list of topics present."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        k = rng.choices([1, 2, 3], weights=[5, 4, 1])[0]
        chosen = rng.sample(TOPICS, k)
        sentences = [_fill(rng, rng.choice(TOPIC_FRAGMENTS[t])) for t in chosen]
        text = rng.choice(GREETINGS) + sentences[0]
        for s in sentences[1:]:
            glue = rng.choice(CONNECTORS)
            lower = (glue.strip().endswith(",") or glue.strip() == "And") and not s.startswith(("I ", "I'"))
            text += glue + (s[0].lower() + s[1:] if lower else s)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "labels": sorted(chosen)})
    return rows


def answer_prompts(seed: int, count: int) -> list[dict]:
    """GRPO prompts/answer rows: a review to classify, answered in a required format, `Answer: <label>`.

    The instruct model often answers in its own words; GRPO's format and answer rewards (recipes/
    grpo-lora-answer-format.yaml) reward the exact form and the right label."""
    rng = random.Random(seed)
    rows = unique_reviews(rng, ["positive", "negative"], -(-count // 2))
    return [
        {
            "prompt": f"Is this review positive or negative? Reply with exactly `Answer: <word>`.\n\n{text}",
            "answer": label,
        }
        for text, label in rows[:count]
    ]
