"""Customer-service conversations and preference pairs for Lumen Lane, the demo's fictional online shop.

Every answer follows one policy table (`POLICY`), so a model fine-tuned on these chats learns facts that
agree with each other: 30-day returns, free shipping over $50, and so on. Intents carry several user
phrasings, an answer that fills in order numbers and names, and optional follow-up turns, which makes some
conversations multi-turn. A few intents are also written in Korean.
"""

from __future__ import annotations

import random

SHOP = "Lumen Lane"
POLICY = {
    "return_days": 30,
    "refund_days": "5-7 business days",
    "free_shipping_over": "$50",
    "standard_days": "3-5 business days",
    "express": "1-2 business days for $12",
    "damage_days": 7,
    "warranty_years": 2,
    "hours": "9:00 to 18:00, Monday to Saturday",
    "reset_valid": "1 hour",
}
SYSTEM_PROMPTS = [
    f"You are the friendly customer-support assistant of {SHOP}, an online shop for home goods and electronics.",
    f"You work in customer support at {SHOP}. Be polite, precise and follow the shop's policies.",
    f"You are {SHOP}'s support assistant. Answer clearly and kindly.",
]
NAMES = [
    "Emma",
    "Liam",
    "Sofia",
    "Noah",
    "Yuna",
    "Minho",
    "Aisha",
    "Lucas",
    "Chloe",
    "Mateo",
    "Hana",
    "Ethan",
    "Zara",
    "Omar",
]
ITEMS = [
    "kettle",
    "blender",
    "desk lamp",
    "bluetooth speaker",
    "air fryer",
    "backpack",
    "yoga mat",
    "toaster",
    "webcam",
    "humidifier",
]

# intent -> (user phrasings, assistant answer, follow-ups as (user, assistant) pairs)
INTENTS: dict[str, tuple[list[str], str, list[tuple[str, str]]]] = {
    "order_status": (
        [
            "Where is my order #{o}?",
            "Hi, I ordered a {i} three days ago (order #{o}). When will it arrive?",
            "Can you check the status of order #{o}, please?",
            "My order #{o} still says processing. What's going on?",
        ],
        "Thanks for reaching out{n}! Order #{o} was dispatched and is on its way. Standard delivery takes "
        f"{POLICY['standard_days']}, and the tracking link is in your dispatch email and on the My Orders page.",
        [
            (
                "I can't find the dispatch email.",
                "No problem. Please check your spam folder; you can also open My Orders, "
                "select order #{o} and press Track parcel to see the same tracking link.",
            ),
            ("Great, thank you!", "You're welcome! Enjoy your {i}, and let us know if anything else comes up."),
        ],
    ),
    "return": (
        [
            "How do I return a {i}?",
            "I'd like to return the {i} I bought last week.",
            "Can I send back my {i}? It doesn't fit my kitchen.",
            "What is your return policy?",
        ],
        f"Of course{{n}}. You can return any unused item in its original packaging within {POLICY['return_days']} days "
        "of delivery. Go to My Orders, choose Return item, and print the free return label. Once we receive the "
        f"parcel, the refund goes to your original payment method within {POLICY['refund_days']}.",
        [
            ("Do I have to pay for the return shipping?", "No, the return label is free for every order."),
            (
                "What if I already threw away the box?",
                "Please contact us with your order number; items without the "
                "original packaging are checked case by case, and we will tell you the options.",
            ),
        ],
    ),
    "shipping_cost": (
        [
            "How much is shipping?",
            "Do you have free delivery?",
            "What are your shipping options?",
            "How long does delivery take?",
        ],
        f"Standard shipping is free on orders over {POLICY['free_shipping_over']} and takes {POLICY['standard_days']}. "
        f"If you are in a hurry, express delivery takes {POLICY['express']}.",
        [
            (
                "Can I upgrade to express after ordering?",
                "Yes, as long as the order has not been dispatched: open My Orders "
                "and choose Change delivery. The $12 fee is charged to the same payment method.",
            )
        ],
    ),
    "damaged": (
        [
            "My {i} arrived broken.",
            "The {i} from order #{o} has a crack in it.",
            "The box was crushed and the {i} inside is damaged.",
            "I received a damaged {i}, what can I do?",
        ],
        f"I'm very sorry about that{{n}}! Please send us a photo of the damage within {POLICY['damage_days']} days of "
        "delivery by replying to your order confirmation for #{o}. We will ship a free replacement right away, and "
        "you don't need to send the broken item back.",
        [
            (
                "Can I get a refund instead of a replacement?",
                "Yes, if you prefer we can refund the full amount to your "
                f"original payment method within {POLICY['refund_days']}.",
            )
        ],
    ),
    "password": (
        [
            "I forgot my password.",
            "I can't log in to my account.",
            "How do I reset my password?",
            "The password reset link doesn't work.",
        ],
        "No worries{n}. On the sign-in page, click Forgot password and enter your email address. We will send a "
        f"reset link that is valid for {POLICY['reset_valid']}. If it doesn't arrive within a few minutes, please "
        "check your spam folder.",
        [
            (
                "The link says it expired.",
                f"Reset links expire after {POLICY['reset_valid']}. Just request a new one from "
                "the sign-in page and use it right away.",
            )
        ],
    ),
    "address": (
        [
            "Can I change the delivery address for order #{o}?",
            "I put the wrong address on my order #{o}.",
            "I'm moving next week, can my {i} be delivered somewhere else?",
        ],
        "Yes{n}, you can change the address until the order is dispatched: open My Orders, select #{o} and "
        "choose Edit address. If it has already been dispatched, reply here and we will contact the courier for you.",
        [
            (
                "It says dispatched already.",
                "Thanks for checking. I have asked the courier to redirect order #{o}; you "
                "will get an email confirmation within one business day.",
            )
        ],
    ),
    "warranty": (
        [
            "Is there a warranty on the {i}?",
            "My {i} stopped working after eight months. Is it covered?",
            "How long is the warranty on electronics?",
        ],
        f"All electronics from {SHOP} come with a {POLICY['warranty_years']}-year warranty{{n}}. If your {{i}} has a "
        "fault, send us the order number and a short description, and we will repair or replace it free of charge.",
        [],
    ),
    "hours": (
        ["When is customer support open?", "What are your opening hours?", "Can I call you on Sunday?"],
        f"Our support team is available {POLICY['hours']} (Korea Standard Time). Outside those hours you can leave a "
        "message here and we will answer the next working day.",
        [],
    ),
    "discount": (
        [
            "My discount code isn't working.",
            "Can I use two discount codes on one order?",
            "The code WELCOME10 was not accepted at checkout.",
        ],
        "I'm sorry for the trouble{n}. Only one discount code can be used per order, and each code has an expiry "
        "date shown in the email it came with. If your code is still valid, tell me the code and I'll apply it "
        "manually.",
        [
            (
                "It's SPRING15.",
                "Thanks! SPRING15 is valid until the end of the month, so I've applied it to your order; "
                "you'll see the updated total in your confirmation email.",
            )
        ],
    ),
    "cancel": (
        ["Please cancel order #{o}.", "I ordered the wrong {i}, can I cancel?", "How do I cancel my order?"],
        "Sure{n}. Orders can be cancelled until they are dispatched: open My Orders, select #{o} and choose Cancel "
        f"order. The refund is issued straight away and appears within {POLICY['refund_days']}.",
        [],
    ),
}
KO_INTENTS: dict[str, tuple[list[str], str]] = {
    "return": (
        ["반품은 어떻게 하나요?", "{i} 반품하고 싶어요."],
        f"물론이죠. 사용하지 않은 상품은 원래 포장 그대로 배송 후 {POLICY['return_days']}일 이내에 반품할 수 있어요. "
        "내 주문에서 반품 신청을 누르고 무료 반품 라벨을 출력해 주세요.",
    ),
    "shipping_cost": (
        ["배송비가 얼마예요?", "무료 배송 되나요?"],
        "50달러 이상 주문하시면 일반 배송이 무료이고, 3-5 영업일이 걸려요. 빠른 배송은 12달러이며 1-2 영업일 안에 도착해요.",
    ),
    "order_status": (
        ["주문 #{o} 어디쯤 왔나요?", "주문한 {i} 언제 도착해요? 주문번호는 #{o}이에요."],
        "문의 감사합니다! 주문 #{o}은 발송되어 배송 중이에요. 발송 안내 메일과 내 주문 페이지에서 배송 조회를 할 수 있어요.",
    ),
    "password": (
        ["비밀번호를 잊어버렸어요.", "로그인이 안 돼요."],
        "걱정 마세요. 로그인 화면에서 비밀번호 찾기를 누르고 이메일 주소를 입력하시면 1시간 동안 유효한 재설정 링크를 보내 드려요.",
    ),
    "hours": (
        ["고객센터 운영 시간이 어떻게 되나요?"],
        "고객센터는 월요일부터 토요일까지 9시부터 18시까지 운영해요. 운영 시간 외에는 메시지를 남겨 주시면 다음 영업일에 답변드려요.",
    ),
}
THANKS = ["Thanks!", "Thank you so much.", "Perfect, thanks.", "Got it, thank you."]
THANKS_REPLIES = [
    "You're welcome! Have a lovely day.",
    "Happy to help. Anything else, just ask!",
    "Glad I could help{n}!",
]


def _slots(rng: random.Random) -> dict[str, str]:
    name = rng.choice(NAMES)
    return {"o": str(rng.randint(100000, 999999)), "i": rng.choice(ITEMS), "name": name}


def _fmt(template: str, slots: dict[str, str], with_name: bool) -> str:
    return template.format(o=slots["o"], i=slots["i"], n=f", {slots['name']}" if with_name else "")


def conversation(rng: random.Random) -> list[dict[str, str]]:
    """One support chat in messages form: sometimes a system prompt, one to three user turns."""
    slots = _slots(rng)
    messages: list[dict[str, str]] = []
    if rng.random() < 0.1:
        ko_users, ko_answer = KO_INTENTS[rng.choice(list(KO_INTENTS))]
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        messages.append({"role": "user", "content": _fmt(rng.choice(ko_users), slots, False)})
        messages.append({"role": "assistant", "content": _fmt(ko_answer, slots, False)})
        return messages
    users, answer, followups = INTENTS[rng.choice(list(INTENTS))]
    if rng.random() < 0.7:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    opener = _fmt(rng.choice(users), slots, False)
    introduced = rng.random() < 0.3
    if introduced:
        opener = f"Hi, this is {slots['name']}. {opener}"
    messages.append({"role": "user", "content": opener})
    messages.append({"role": "assistant", "content": _fmt(answer, slots, introduced)})
    if followups and rng.random() < 0.45:
        user, reply = rng.choice(followups)
        messages.append({"role": "user", "content": _fmt(user, slots, False)})
        messages.append({"role": "assistant", "content": _fmt(reply, slots, introduced)})
    if rng.random() < 0.2:
        messages.append({"role": "user", "content": rng.choice(THANKS)})
        messages.append({"role": "assistant", "content": _fmt(rng.choice(THANKS_REPLIES), slots, introduced)})
    return messages


def support_chats(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        messages = conversation(rng)
        key = tuple(m["content"] for m in messages)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"messages": messages})
    return rows


def support_sharegpt(seed: int, count: int) -> list[dict]:
    """The same kind of chats in sharegpt form (`conversations` with from/value: system, human, gpt)."""
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return [
        {
            "id": f"lumen-{i:04d}",
            "conversations": [{"from": names[m["role"]], "value": m["content"]} for m in row["messages"]],
        }
        for i, row in enumerate(support_chats(seed, count))
    ]


REJECTED = [
    "Not my problem.",
    "Read the website.",
    "No idea, ask someone else.",
    "Can't help with that.",
    "We don't do that.",
    "Figure it out yourself.",
    "Whatever. Try again later.",
]
# Confidently wrong answers: a preference model must learn politeness and the policy facts.
WRONG = {
    "return": "Returns are not accepted after 3 days. Don't bother.",
    "shipping_cost": "Shipping is always $25. No exceptions.",
    "damaged": "Damage is your responsibility once it ships.",
    "password": "Just make a new account.",
    "warranty": "There is no warranty.",
    "hours": "We're open whenever. Call any time, maybe someone answers.",
    "discount": "Codes never work. Pay full price.",
    "cancel": "Orders can't be cancelled.",
    "order_status": "It'll get there when it gets there.",
    "address": "Too late, addresses can't be changed.",
}


def preferences(seed: int, count: int) -> list[dict]:
    """prompt/chosen/rejected: chosen is the polite policy answer, rejected is curt or wrong."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        intent = rng.choice(list(INTENTS))
        users, answer, _ = INTENTS[intent]
        slots = _slots(rng)
        prompt = _fmt(rng.choice(users), slots, False)
        if rng.random() < 0.3:
            prompt = f"{rng.choice(['Hello!', 'Hi.', 'Good evening.', 'Quick question.'])} {prompt}"
        if prompt in seen:
            continue
        seen.add(prompt)
        rejected = WRONG[intent] if rng.random() < 0.5 else rng.choice(REJECTED)
        rows.append({"prompt": prompt, "chosen": _fmt(answer, slots, False), "rejected": rejected})
    return rows


def feedback(seed: int, count: int) -> list[dict]:
    """Unpaired prompt/completion/label rows for KTO: each answer of a preference pair judged on its own
    (label true: the polite policy answer, false: the curt or wrong one), taken from shuffled pairs so a
    prompt's good and bad answers are not always neighbours."""
    rng = random.Random(seed)
    rows = []
    for pair in preferences(seed, -(-count // 2)):
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        rows.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    rng.shuffle(rows)
    return rows[:count]
