"""Question-answer pairs and free-text notes about the Nimbus H2, a fictional smart-home hub.

The facts live once in `FACTS`, each with several ways to ask about it and one answer, so the domain-QA set
is consistent (the hub always pairs with a 5-second press, always holds 64 devices) and a fine-tuned model can
be checked against it. The notes reuse the same facts in another register (release notes, staff memos).
"""

from __future__ import annotations

import random

PRODUCT = "Nimbus H2"

# (questions, answer)
FACTS: list[tuple[list[str], str]] = [
    (
        [
            "How do I pair the {P} with my phone?",
            "What are the steps to pair the {P}?",
            "How do I set up the {P} for the first time?",
        ],
        "Install the Nimbus app, then hold the pairing button on the back of the {P} for 5 seconds until the light ring blinks blue. The app finds the hub and walks you through the rest.",
    ),
    (
        [
            "How many devices can the {P} control?",
            "What is the maximum number of devices on one {P}?",
            "Is there a limit on connected devices for the {P}?",
        ],
        "One {P} can control up to 64 devices at the same time.",
    ),
    (
        [
            "Which Wi-Fi bands does the {P} support?",
            "Does the {P} work with 5 GHz Wi-Fi?",
            "What Wi-Fi does the {P} need?",
        ],
        "The {P} supports both 2.4 GHz and 5 GHz Wi-Fi (802.11ac).",
    ),
    (
        [
            "Which smart-home protocols does the {P} speak?",
            "Does the {P} support Zigbee?",
            "Can the {P} talk to Thread devices?",
        ],
        "The {P} supports Zigbee 3.0, Thread and Matter, plus Bluetooth LE for setup.",
    ),
    (
        [
            "How do I factory reset the {P}?",
            "How can I reset the {P} to factory settings?",
            "What's the way to wipe the {P}?",
        ],
        "Hold the pairing button for 20 seconds until the light ring turns solid red, then release it. The hub restarts with factory settings in about two minutes.",
    ),
    (
        [
            "What does a pulsing orange light on the {P} mean?",
            "Why is my {P} glowing orange?",
            "The ring on my {P} pulses orange. What's wrong?",
        ],
        "A pulsing orange ring means the {P} has lost its internet connection. Check your router; the hub reconnects by itself when the network is back.",
    ),
    (
        ["What does a solid green light mean on the {P}?", "My {P} shows a steady green ring. Is that normal?"],
        "Yes. A solid green ring means the {P} is online and working normally.",
    ),
    (
        [
            "How does the {P} get firmware updates?",
            "Does the {P} update itself?",
            "How do I update the firmware of the {P}?",
        ],
        "Firmware updates install automatically every night between 2:00 and 4:00. You can also start one from Settings > Hub > Firmware in the Nimbus app.",
    ),
    (
        ["What power supply does the {P} use?", "How is the {P} powered?", "Can I power the {P} from USB?"],
        "The {P} is powered by USB-C with the included 5 V / 2 A adapter; any USB-C charger with the same rating works.",
    ),
    (
        ["Does the {P} have a backup battery?", "What happens to the {P} during a power cut?"],
        "Yes. A built-in backup battery keeps the {P} and its automations running for about 4 hours during a power cut.",
    ),
    (
        ["How long is the warranty on the {P}?", "What warranty comes with the {P}?"],
        "The {P} comes with a 2-year limited warranty.",
    ),
    (
        ["What are the dimensions of the {P}?", "How big is the {P}?", "How much does the {P} weigh?"],
        "The {P} measures 98 x 98 x 32 mm and weighs 180 grams.",
    ),
    (
        ["Does the {P} work without internet?", "Can the {P} run automations offline?"],
        "Yes. Automations run locally on the {P}, so lights and sensors keep working without internet; only remote access and voice assistants need a connection.",
    ),
    (
        [
            "Which voice assistants work with the {P}?",
            "Can I control the {P} with Alexa?",
            "Does the {P} support Google Assistant?",
        ],
        "The {P} works with Amazon Alexa, Google Assistant and Apple Siri through Matter.",
    ),
    (
        ["How many users can share one {P}?", "Can my family use the same {P}?"],
        "Up to 10 people can share one {P}; invite them from Settings > Members in the Nimbus app.",
    ),
    (
        ["What is the range of the {P}?", "How far can devices be from the {P}?"],
        "Indoors the {P} reaches devices up to about 30 metres away; mains-powered Zigbee and Thread devices extend the range as repeaters.",
    ),
    (
        ["Can I use two {P} hubs in one home?", "Is it possible to combine several {P} hubs?"],
        "Yes. Up to 4 {P} hubs can join one home; they share devices and automations automatically.",
    ),
    (
        ["Where should I place the {P}?", "What's the best spot for the {P}?"],
        "Place the {P} in a central spot, at least 1 metre away from the router and off the floor, for the best range.",
    ),
    (
        ["Does the {P} record video?", "Does the {P} have a camera or microphone?"],
        "No. The {P} has no camera and no microphone.",
    ),
    (
        ["How do I back up my {P} settings?", "Are my {P} automations saved in the cloud?"],
        "The Nimbus app keeps an encrypted backup of your devices and automations in the cloud every day; restore it from Settings > Backup.",
    ),
    (
        ["What is the operating temperature of the {P}?", "Can I put the {P} in my garage?"],
        "The {P} is rated for 0 to 40 °C indoors, so an unheated garage in winter is not recommended.",
    ),
    (
        ["How do I add a sensor to the {P}?", "How can I connect a new device to the {P}?"],
        "In the Nimbus app tap Add device, choose the device type, then put the device in pairing mode; the {P} adds it within a minute.",
    ),
    (["What does the {P} cost?", "How much is the {P}?"], "The {P} costs $89 in the Lumen Lane shop."),
    (
        ["Is there a subscription for the {P}?", "Do I need to pay monthly for the {P}?"],
        "No subscription is needed. All features of the {P} are free; Nimbus Plus ($3 per month) only adds 90 days of event history.",
    ),
    (
        ["What does a blinking white light on the {P} mean?", "Why is the {P} ring blinking white?"],
        "A blinking white ring means a firmware update is being installed. Do not unplug the {P} until the ring turns green.",
    ),
    (
        ["Which app do I need for the {P}?", "Is there an app for the {P}?"],
        "Use the free Nimbus app for iOS 16 or later and Android 11 or later.",
    ),
]
KO_FACTS: list[tuple[list[str], str]] = [
    (
        ["{P}는 어떻게 연결하나요?", "{P} 페어링 방법을 알려 주세요."],
        "Nimbus 앱을 설치한 뒤 {P} 뒷면의 페어링 버튼을 링이 파란색으로 깜박일 때까지 5초간 누르세요.",
    ),
    (["{P}에 기기를 몇 개까지 연결할 수 있나요?"], "{P} 하나에 최대 64개의 기기를 연결할 수 있어요."),
    (
        ["{P}를 초기화하려면 어떻게 하나요?"],
        "페어링 버튼을 링이 빨간색으로 켜질 때까지 20초간 누른 뒤 놓으세요. 약 2분 후 공장 설정으로 다시 시작됩니다.",
    ),
    (["{P} 보증 기간은 얼마인가요?"], "{P}의 보증 기간은 2년입니다."),
    (
        ["{P}가 주황색으로 깜박여요."],
        "주황색 링은 인터넷 연결이 끊겼다는 뜻이에요. 공유기를 확인해 주세요. 네트워크가 돌아오면 자동으로 다시 연결됩니다.",
    ),
    (["정전 때 {P}는 어떻게 되나요?"], "내장 배터리로 약 4시간 동안 {P}와 자동화가 계속 작동해요."),
]
PREFIXES = ["", "", "", "Quick question: ", "According to the {P} manual, ", "Hi! ", "I just bought a {P}. "]
INSTRUCTIONS_WITH_INPUT = ["Answer the customer's question about the {P}.", "Answer using the {P} documentation."]


def _ask(prefix: str, question: str) -> str:
    q = question.format(P=PRODUCT)
    if prefix.endswith(", "):
        q = q[0].lower() + q[1:] if not q.startswith(("I ", "I'")) else q
    return prefix.format(P=PRODUCT) + q


def domain_qa(seed: int, count: int) -> list[dict]:
    """Alpaca rows: mostly the question as the instruction; some put it in `input` under a fixed instruction."""
    rng = random.Random(seed)
    candidates = []
    for facts in (FACTS, KO_FACTS):
        for questions, answer in facts:
            for question in questions:
                prefixes = PREFIXES if facts is FACTS else [""]
                for prefix in prefixes:
                    candidates.append((_ask(prefix, question), answer.format(P=PRODUCT)))
    unique = list(dict.fromkeys(candidates))
    rng.shuffle(unique)
    rows = []
    for question, answer in unique[:count]:
        if rng.random() < 0.2:
            rows.append(
                {
                    "instruction": rng.choice(INSTRUCTIONS_WITH_INPUT).format(P=PRODUCT),
                    "input": question,
                    "output": answer,
                }
            )
        else:
            rows.append({"instruction": question, "input": "", "output": answer})
    return rows


NOTE_KINDS = [
    "Support memo: customers keep asking {q_lower} Tell them: {a}",
    "FAQ draft. Q: {q} A: {a}",
    "Release notes for the {P}, firmware {v}: fixed {bug}; improved {area}. Reminder for the support team: {a}",
    "Shift handover ({day}): {n} tickets about the {P} today, mostly {topic}. {a}",
    "Product tip #{k}: {a}",
    "Meeting notes, {day}: agreed to update the help page. Key point: {a} Owner: {name}.",
]
KO_NOTES = [
    "고객센터 메모: {P} 관련 문의가 {n}건 들어왔어요. 대부분 {topic_ko} 문의였어요.",
    "{day_ko} 회의록: {P} 도움말 페이지를 업데이트하기로 했어요. 담당자는 {name}입니다.",
    "제품 팁: {P}는 공유기에서 1미터 이상 떨어진 곳에 두는 것이 좋아요.",
    "펌웨어 {v} 배포 완료. 밤 2시에서 4시 사이에 자동으로 설치됩니다.",
]
BUGS = [
    "a crash when renaming rooms",
    "slow pairing of Thread sensors",
    "wrong battery levels on door sensors",
    "duplicate notifications",
    "a timezone bug in schedules",
    "missing Korean translations",
]
AREAS = ["Zigbee range", "startup time", "Matter compatibility", "backup speed", "app responsiveness"]
TOPICS = ["pairing", "the orange light", "firmware updates", "factory resets", "Wi-Fi bands", "voice assistants"]
TOPICS_KO = ["페어링", "초기화", "펌웨어 업데이트", "와이파이 연결", "보증"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
DAYS_KO = ["월요일", "화요일", "수요일", "목요일", "금요일"]
STAFF = ["Dana", "Jisoo", "Marco", "Priya", "Tom", "Seo-yeon", "Felix"]


def notes(seed: int, count: int) -> list[dict]:
    """{"text": ...} rows: memos, FAQ drafts, release notes and tips built on the same facts (10% Korean)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        if rng.random() < 0.1:
            template = rng.choice(KO_NOTES)
        else:
            template = rng.choice(NOTE_KINDS)
        questions, answer = rng.choice(FACTS)
        q = questions[rng.randrange(len(questions))].format(P=PRODUCT)
        text = template.format(
            P=PRODUCT,
            q=q,
            q_lower=q[0].lower() + q[1:],
            a=answer.format(P=PRODUCT),
            v=f"2.{rng.randint(0, 9)}.{rng.randint(0, 30)}",
            bug=rng.choice(BUGS),
            area=rng.choice(AREAS),
            day=rng.choice(DAYS),
            day_ko=rng.choice(DAYS_KO),
            n=rng.randint(3, 60),
            topic=rng.choice(TOPICS),
            topic_ko=rng.choice(TOPICS_KO),
            k=rng.randint(1, 99),
            name=rng.choice(STAFF),
        )
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text})
    return rows
