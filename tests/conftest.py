import json
import os
import random
from pathlib import Path

import pytest
import servers
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "data" / "sample"
CORPORA = Path(os.environ.get("QISM_CORPORA", ROOT.parent / "shared" / "corpora"))


#: Two short articles every test can label: a sports story and an economy story.
SPORTS = "فاز الفريق بالمباراة وسجل اللاعب هدفين في الدوري"
ECONOMY = "ارتفعت أسعار الأسهم في البورصة وتراجع التضخم"


def run(*args, input=None):
    """`qism ARGS...` in this process, as typer's test runner gives it (stdout and stderr apart)."""
    from qism.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def assert_user_error(result, fragment):
    """A user mistake: exit status 1 and one line on stderr that says `fragment`, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr


def corpus(name: str) -> Path:
    """A shared real corpus, or skip the test when it is not beside the repository."""
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def model_arrays(model) -> dict:
    """The arrays that make a trained model, by name: two models are the same when these are."""
    import numpy as np

    features, classifier = model.pipeline.named_steps["features"], model.pipeline.named_steps["classifier"]
    return {
        "classes": classifier.classes_,
        "columns": features.columns_,
        "idf": features.idf_,
        "boilerplate": features.boilerplate_,
        "coef": classifier.coef_,
        "intercept": classifier.intercept_,
        "temperature": np.asarray(classifier.temperature_),
    }


LABEL_MAP = """
[labels.sport]
name = "رياضة"
from = ["sports"]

[labels.money]
name = "اقتصاد"
from = ["tiny:economy"]
"""


def write_label_map(folder: Path) -> Path:
    """A label map for the tiny corpus: sports and economy renamed, security left out."""
    path = folder / "map.toml"
    path.write_text(LABEL_MAP, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny() -> Path:
    return FIXTURES / "tiny"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny):
    from qism import TrainConfig, train

    directory = tmp_path_factory.mktemp("models") / "tiny"
    train([tiny], TrainConfig(test_size=0.0, min_df=1)).save(directory)
    return directory


@pytest.fixture(scope="session")
def sample_model_dir(tmp_path_factory):
    from qism import TrainConfig, train

    directory = tmp_path_factory.mktemp("models") / "sample"
    train([SAMPLE], TrainConfig()).save(directory)
    return directory


#: Words of each label's stories, words every story shares, and each outlet's closing line.
TOPIC_WORDS = {
    "sports": ["المباراة", "الفريق", "اللاعب", "هدف", "الدوري", "المدرب", "البطولة", "الملعب", "الكأس", "الجمهور"],
    "economy": [
        "الأسعار",
        "البورصة",
        "الأسهم",
        "التضخم",
        "البنك",
        "الاستثمار",
        "الشركة",
        "النفط",
        "الميزانية",
        "السوق",
    ],
    "security": ["الشرطة", "المتهم", "الجريمة", "المحكمة", "التحقيق", "الحادث", "السجن", "الأمن", "القضية", "الضحية"],
}
SHARED_WORDS = ["قال", "في", "اليوم", "وأضاف", "أن", "من", "على", "إلى", "هذا", "العام", "بعد", "الذي"]
CLOSING_LINE = {"north": "تابعونا على موقعنا لمزيد من الأخبار.", "south": "جميع الحقوق محفوظة للجريدة."}
#: Outlet north has all three sections; south has no security section and files such stories under economy.
SECTIONS = {"north": ("sports", "economy", "security"), "south": ("sports", "economy")}


def _story(rng: random.Random, topic: str, outlet: str) -> str:
    words = [rng.choice(TOPIC_WORDS[topic] if rng.random() < 0.4 else SHARED_WORDS) for _ in range(rng.randint(25, 45))]
    return f"{' '.join(words)} {rng.randint(1, 2030)}.\n{CLOSING_LINE[outlet]}"


@pytest.fixture(scope="session")
def two_outlets(tmp_path_factory):
    """A JSON Lines corpus of two outlets whose sections differ (written here, not copied from a corpus),
    with a few exact repeats so that deduplication has work."""
    rng = random.Random(25)
    records = []
    for outlet, sections in SECTIONS.items():
        for topic in ("sports", "economy", "security"):
            label = topic if topic in sections else "economy"
            count = 50 if topic in sections else 15
            stories = [_story(rng, topic, outlet) for _ in range(count)]
            records += [
                {"title": " ".join(story.split()[:6]), "text": story, "label": label, "source": outlet}
                for story in stories
            ]
    records += records[:6]
    path = tmp_path_factory.mktemp("every-option") / "two-outlets.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


# --- real `qism serve` processes (tests/servers.py) -----------------------------------------------


@pytest.fixture
def start(tmp_path):
    started = []

    def start(*args):
        started.append(servers.Server(tmp_path / f"server{len(started)}.log", *[str(a) for a in args]))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sample_server(sample_model_dir, tmp_path_factory):
    server = servers.Server(tmp_path_factory.mktemp("serve") / "server.log", "--model", str(sample_model_dir))
    yield server
    server.stop()


#: Test modules that start servers, clusters, browsers or many processes, or read the real corpora:
#: `pytest -m "not slow"` leaves them out for a quick run.
SLOW_MODULES = {
    "test_adapt",
    "test_bad_input",
    "test_cluster",
    "test_cluster_waits",
    "test_docs",
    "test_editor",
    "test_hostile_input",
    "test_hostile_labels",
    "test_native",
    "test_output_files",
    "test_properties",
    "test_real_corpora",
    "test_serve",
    "test_serve_ops",
    "test_streaming",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
