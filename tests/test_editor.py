"""The editor's page of `qism serve` in a real headless browser (Debian's chromium driven by Playwright),
and its corrections file over HTTP. The browser test skips where /usr/bin/chromium or playwright is missing
(`apt-get install -y chromium`); it never downloads a browser."""

import json
import os
from pathlib import Path

import pytest
from conftest import ECONOMY, SPORTS
from qism import ReadOptions, read_source
from qism.model import load_model
from test_serve import assert_error, cli_records

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def offline_page(browser, server):
    """A page that may load only from the server: any other address is refused and remembered."""
    page = browser.new_page()
    page.outside = []

    def only_the_server(route):
        if route.request.url.startswith(server.url):
            return route.continue_()
        page.outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server.url}/")
    return page


def corrections_in(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_editor_labels_pasted_articles_and_corrects_one_with_a_click(start, browser, tmp_path):
    corrections = tmp_path / "corrections.jsonl"
    server = start("--corrections", corrections)
    page = offline_page(browser, server)
    assert page.get_attribute("html", "dir") == "rtl" and page.get_attribute("html", "lang") == "ar"
    page.fill("#articles", f"{SPORTS}\n---\n{ECONOMY}\n")
    page.click("#label")
    page.locator(".article").nth(1).wait_for()
    records = cli_records(SPORTS, ECONOMY, "--top-k", 3, "--explain", 6)
    cards = page.locator(".article")
    assert cards.count() == 2
    for at, record in enumerate(records):
        assert cards.nth(at).locator(".section").inner_text() == record["label_ar"]
        assert cards.nth(at).locator(".score").count() == 3
        assert cards.nth(at).locator(".terms span").count() == len(record["terms"])
    cards.nth(1).locator('button[data-label="security"]').click()
    cards.nth(1).get_by_text("حُفظ التصحيح").wait_for()
    page.screenshot(path=Path(os.environ.get("QISM_SCREENSHOTS", tmp_path)) / "editor.png", full_page=True)
    saved = corrections_in(corrections)
    assert [{k: v for k, v in line.items() if k != "time"} for line in saved] == [
        {"id": "لصق-2", "text": ECONOMY, "label": "security", "guess": records[1]["label"]}
    ]
    assert page.outside == []
    documents = list(read_source(corrections, ReadOptions()))  # an ordinary labeled corpus
    assert [(d.text, d.label) for d in documents] == [(ECONOMY, "security")]


def test_an_editor_uploads_a_json_lines_file_and_the_titles_travel_to_the_corrections(start, browser, tmp_path):
    corrections = tmp_path / "corrections.jsonl"
    server = start("--corrections", corrections)
    page = offline_page(browser, server)
    articles = [{"id": "a-1", "title": "مباراة الأمس", "text": SPORTS}, {"id": "a-2", "text": ECONOMY}]
    upload = "".join(json.dumps(article, ensure_ascii=False) + "\n" for article in articles).encode()
    page.set_input_files("#upload", files=[{"name": "articles.jsonl", "mimeType": "text/plain", "buffer": upload}])
    page.locator(".article").nth(1).wait_for()
    assert page.locator(".article h2").all_inner_texts() == ["مباراة الأمس", "a-2"]
    page.locator(".article").nth(0).locator('button[data-label="culture"]').click()
    page.locator(".article").nth(0).get_by_text("حُفظ التصحيح").wait_for()
    (saved,) = corrections_in(corrections)
    assert (saved["id"], saved["title"], saved["label"]) == ("a-1", "مباراة الأمس", "culture")
    assert page.outside == []


# --- the corrections file over HTTP ---------------------------------------------------------------


def correct(server, body: dict | bytes, **headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.client.post(
        "/v1/corrections", content=content, headers={"content-type": "application/json", **headers}
    )


def test_corrections_are_appended_after_what_the_file_holds(start, tmp_path, tiny_model_dir):
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_bytes(b'{"text": "earlier", "label": "sports"}\n{"text": "cut sh')  # a crash left a torn line
    server = start("--model", tiny_model_dir, "--corrections", corrections, "--workers", 2)
    for at in range(6):
        answer = correct(server, {"id": at, "text": SPORTS, "label": "economy"})
        assert answer.status_code == 200 and answer.json()["guess"] in load_model(tiny_model_dir).labels
    lines = corrections.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ['{"text": "earlier", "label": "sports"}', '{"text": "cut sh']
    assert sorted(json.loads(line)["id"] for line in lines[2:]) == [str(at) for at in range(6)]


BAD_CORRECTIONS = [
    {"text": SPORTS},
    {"text": "", "label": "sports"},
    {"text": SPORTS, "label": ""},
    {"text": SPORTS, "label": "x" * 201},
    {"text": SPORTS, "label": "sports", "extra": 1},
    {"text": 5, "label": "sports"},
    [SPORTS, "sports"],
    b"[" * 100_000,
    b"[" + b"1," * 500_000 + b"1]",
    b"not json",
]


def test_a_bad_correction_is_422_and_writes_nothing(start, tmp_path, tiny_model_dir):
    corrections = tmp_path / "corrections.jsonl"
    server = start("--model", tiny_model_dir, "--corrections", corrections)
    for body in BAD_CORRECTIONS:
        assert_error(correct(server, body), 422, "not a correction")
    assert not corrections.exists()


def test_without_a_corrections_file_the_page_is_served_and_corrections_are_404(sample_server):
    assert sample_server.client.get("/").headers["content-type"].startswith("text/html")
    assert sample_server.client.get("/v1/editor").json() == {"corrections": False}
    assert_error(correct(sample_server, {"text": SPORTS, "label": "sports"}), 404, "--corrections FILE")
