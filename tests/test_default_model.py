"""The shipped default model on short input: headlines a security desk files stay `security` wherever
they happen, war and diplomacy between states stay `international` or `arab_affairs`, and the
README's examples are labeled as the README says. Sentences written for qism, from no corpus."""

import json

import pytest
from qism.cli import app
from qism.model import DEFAULT_MODEL_PLACES, load_model
from typer.testing import CliRunner

#: The headlines the shipped model (trained on articles only) files elsewhere today: expected
#: failures, strict, so that the day a model files them right the test says so. Titles as training
#: documents (`titles = "also"`, bench/short.py) were measured and not yet shipped: see the recipe's notes.
FILED_ELSEWHERE_TODAY = pytest.mark.xfail(strict=True, reason="the shipped model files this headline elsewhere")


def filed_elsewhere(headline: str, section: str):
    return pytest.param(headline, section, marks=FILED_ELSEWHERE_TODAY)


#: (headline, the section a newsroom files it under)
HEADLINES = [
    # the README's examples
    filed_elsewhere("اعتقلت الشرطة عصابة لتهريب المخدرات عبر الحدود", "security"),
    filed_elsewhere("الحكم بالسجن عشر سنوات على متهم بقضية قتل في إربد", "security"),
    filed_elsewhere("القمة العربية تبحث الأزمة في السودان", "arab_affairs"),
    # crime, arrests, trials and accidents abroad: the security desk
    ("الشرطة الفرنسية تعتقل رجلا طعن ثلاثة أشخاص في محطة قطارات بباريس", "security"),
    filed_elsewhere("محكمة ألمانية تقضي بسجن زعيم عصابة لتهريب البشر", "security"),
    ("مصرع خمسة أشخاص في حادث سير على طريق سريع في إسبانيا", "security"),
    ("القبض على لص سرق مجوهرات بملايين الدولارات من متحف في لندن", "security"),
    ("ضبط شحنة كوكايين في ميناء برازيلي وتوقيف طاقم السفينة", "security"),
    # war and diplomacy between states
    ("وزير الخارجية الأمريكي يلتقي نظيره الصيني لبحث التوتر في بحر الصين الجنوبي", "international"),
    ("الاتحاد الأوروبي يفرض عقوبات جديدة على روسيا بسبب الحرب في أوكرانيا", "international"),
    filed_elsewhere("الجامعة العربية تدعو إلى وقف فوري لإطلاق النار في غزة", "arab_affairs"),
    filed_elsewhere("وزراء خارجية دول الخليج يبحثون في الرياض العلاقات مع إيران", "arab_affairs"),
]

#: Short items: a word or two, a headline fragment, a question.
SHORT_ITEMS = ["هدف", "كورونا", "أسعار النفط", "انفجار", "ترامب", "الدوري الإسباني", "؟ لماذا ارتفع الدولار"]


@pytest.fixture(scope="module")
def default_model():
    if not any((place / "card.json").is_file() for place in DEFAULT_MODEL_PLACES):
        pytest.skip("no default model installed")
    return load_model()


@pytest.mark.parametrize("headline, section", HEADLINES)
def test_headlines_are_filed_where_a_newsroom_files_them(default_model, headline, section):
    [top] = default_model.predict_top(headline, k=3)
    assert top[0][0] == section, top


def test_short_items_are_labeled_with_a_full_top(default_model, tmp_path):
    """One line each, as a news feed gives them: every item gets a label and its top 3, best first;
    a line without Arabic words gets its reason, not a guess."""
    lines = tmp_path / "items.txt"
    lines.write_text("\n".join([*SHORT_ITEMS, "", "the"]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", "--input", str(lines), "--lines", "--format", "json", "--top-k", "3"])
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    for record in records[: len(SHORT_ITEMS)]:
        scores = [entry["score"] for entry in record["top"]]
        assert record["label"] in default_model.labels and record["label"] == record["top"][0]["label"]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
    assert [(r["top"], r["reason"]) for r in records[len(SHORT_ITEMS) :]] == [
        ([], "empty text"),
        ([], "no Arabic words"),
    ]
