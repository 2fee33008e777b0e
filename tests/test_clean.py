import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from qism import clean
from qism.clean import TextCleaner, clean_text


def test_diacritics_and_tatweel_removed():
    assert clean.remove_diacritics("مُحَمَّدٌ") == "محمد"
    assert clean.remove_tatweel("كـــبير") == "كبير"


def test_alef_yeh_teh_marbuta_and_digits():
    assert clean.normalize_alef("أإآٱ") == "اااا"
    assert clean.normalize_yeh("على") == "علي"
    assert clean.normalize_teh_marbuta("مدرسة") == "مدرسه"
    assert clean.normalize_digits("٢٠٢٤ و۱۹") == "2024 و19"


def test_invisible_and_control_characters_removed():
    assert clean.remove_invisibles("مر\u200cحبا\x00\ufeff") == "مرحبا"


def test_teh_marbuta_is_switchable():
    assert TextCleaner(teh_marbuta=False)("مدرسة") == "مدرسة"
    assert TextCleaner()("مدرسة") == "مدرسه"


def test_web_residue_removed():
    text = "زار <b>الوزير</b> &amp; الوفد #215; الموقع https://example.com/x?y=1 وراسل info@example.com @user"
    cleaned = clean_text(text)
    for residue in ("<b>", "&amp;", "#215;", "https", "example", "@user"):
        assert residue not in cleaned
    assert "الوزير" in cleaned and "الوفد" in cleaned


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("اب \t\xa0\u2003\u3000\x1f\x85") | st.characters(exclude_categories=("Cs",))))
def test_collapse_spaces_is_split_and_join(line):
    line = line.replace("\n", "").replace("\r", "")
    assert clean.collapse_spaces(line) == " ".join(line.split())


def test_hashtags_keep_their_words():
    assert clean_text("#عاصي_الحلاني يغني") == "عاصي الحلاني يغني"


def test_space_restored_after_glued_sentence_mark():
    assert clean_text("الدستوري.وكانت") == "الدستوري. وكانت"
    assert clean_text("النسبة 3.5 بالمئة") == "النسبه 3.5 بالمئه"


def test_news_page_keeps_body_once_and_drops_boilerplate():
    page = (FIXTURES / "news_page.txt").read_text(encoding="utf-8")
    expected = (FIXTURES / "news_page.expected.txt").read_text(encoding="utf-8")
    cleaned = clean_text(page)
    assert cleaned == clean_text(expected)
    body = expected.splitlines()[1]
    assert cleaned.count(clean_text(body)) == 1
    for boilerplate in ("الرئيسيه", "عربي ودولي", "تعليقات القراء", "لا يوجد تعليقات", "عمانيات -"):
        assert boilerplate not in cleaned


def test_breadcrumb_trail_on_one_line():
    text = (
        "الرئيسية > أخبار > عربي\nعنوان الخبر\nقال المتحدث باسم الحكومة إن الاجتماع سيعقد غدا في العاصمة بحضور الوزراء."
    )
    assert clean_text(text).splitlines()[0] == "عنوان الخبر"


def test_source_prefix_needs_a_real_lead_after_it():
    assert clean_text("القاهرة - رويترز") == "القاهره - رويترز"


def test_switched_off_steps_keep_text():
    page = (FIXTURES / "news_page.txt").read_text(encoding="utf-8")
    kept = TextCleaner(breadcrumbs=False, comment_footer=False, repeated_lines=False, source_prefix=False)(page)
    assert kept.startswith("الرئيسيه") and "تعليقات القراء" in kept


@pytest.mark.parametrize("name", ["diacritics", "alef", "digits", "html", "urls", "breadcrumbs"])
def test_cleaner_params_round_trip(name):
    cleaner = TextCleaner(**{name: False})
    assert cleaner.get_params()[name] is False


arabic_text = st.text(
    alphabet=st.characters(min_codepoint=0x600, max_codepoint=0x6FF) | st.sampled_from(" \n.-<>&#@/:_ابت")
)


@settings(max_examples=300, deadline=None)
@given(st.text() | arabic_text)
def test_cleaner_never_raises_is_idempotent_and_leaves_no_marks(text):
    once = clean_text(text)
    assert clean_text(once) == once
    assert not any(ch in once for ch in "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0640")


@pytest.mark.parametrize(
    "lead", ["دبي، الإمارات العربية المتحدة (CNN) -- ", "(CNN)-- ", "القاهرة (رويترز) - ", "دبي - وام: "]
)
def test_datelines_and_agency_credits_are_removed(lead):
    story = "قادت المملكة العربية السعودية وروسيا جهود خفض الإنتاج في أسواق النفط هذا العام"
    assert clean_text(f"عنوان الخبر\n{lead}{story}") == clean_text(f"عنوان الخبر\n{story}")
