import os
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
