"""Inputs that are streams, mixed encodings, bombs, links out of the corpus, deep trees and closed
standard streams: every record is read once, every limit holds, every problem is one line. See
tests/README.md for the table of cases."""

import gzip
import json
import os
import resource
import shlex
import subprocess
import threading
from pathlib import Path

import pytest
from qism import QismError, ReadOptions, TrainConfig, corpus, read_source, train
from qism.progress import count_documents
from test_bad_input import ECONOMY, SPORTS, qism, tiny_plus, write_tree
from test_cli import assert_user_error, run


def jsonl_records(n: int) -> bytes:
    return b"".join(
        json.dumps({"id": f"d{i}", "text": f"{SPORTS} {i}"}, ensure_ascii=False).encode() + b"\n" for i in range(n)
    )


def predicted_ids(stdout: str) -> list[str]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


# --- pipes, FIFOs and /dev/stdin are read once, whole ------------------------------------------

N_STREAMED = 20_000  # about 2 MB: many times the bytes sniffed for the encoding


def within(seconds: float, read):
    """What `read()` returns, failing (not hanging) when it waits on a FIFO nobody writes any more."""
    answer = {}

    def target():
        try:
            answer["value"] = read()
        except BaseException as err:  # handed to the test's thread
            answer["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    if "error" in answer:
        raise answer["error"]
    return answer["value"]


def feed_fifo(path: Path, data: bytes) -> threading.Thread:
    """A FIFO at `path` that a thread fills with `data` once a reader opens it."""
    os.mkfifo(path)

    def write():
        with open(path, "wb") as handle:
            handle.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "lines"])
def test_a_fifo_is_read_once_and_whole_in_every_streamed_format(tmp_path, fmt):
    data = {
        "jsonl": jsonl_records(N_STREAMED),
        "csv": b"id,text\n" + b"".join(f"d{i},{SPORTS} {i}\n".encode() for i in range(N_STREAMED)),
        "lines": b"".join(f"{SPORTS} {i}\n".encode() for i in range(N_STREAMED)),
    }[fmt]
    fifo = tmp_path / "in.fifo"
    writer = feed_fifo(fifo, data)
    docs = within(60, lambda: list(read_source(fifo, ReadOptions(require_labels=False), fmt)))
    writer.join(10)
    assert [doc.text.rsplit(" ", 1)[1] for doc in docs] == [str(i) for i in range(N_STREAMED)]


def test_predict_from_a_fifo_a_pipe_and_dev_stdin_loses_no_record(tmp_path, tiny_model_dir):
    data = jsonl_records(N_STREAMED)
    expected = [f"d{i}" for i in range(N_STREAMED)]
    fifo = tmp_path / "in.jsonl"
    writer = feed_fifo(fifo, data)
    base = ["predict", "--model", tiny_model_dir, "--format", "jsonl", "--jobs", "1"]
    from_fifo = subprocess.run(qism(*base, "--input", fifo), capture_output=True, text=True, timeout=120)
    writer.join(10)
    assert from_fifo.returncode == 0, from_fifo.stderr
    assert predicted_ids(from_fifo.stdout) == expected
    from_stdin = subprocess.run(
        qism(*base, "--input", "/dev/stdin", "--input-format", "jsonl"), input=data, capture_output=True, timeout=120
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert predicted_ids(from_stdin.stdout.decode()) == expected
    lines = b"".join(f"{SPORTS} {i}\n".encode() for i in range(N_STREAMED))
    from_pipe = subprocess.run(qism(*base, "-", "--lines"), input=lines, capture_output=True, timeout=120)
    assert from_pipe.returncode == 0, from_pipe.stderr
    assert predicted_ids(from_pipe.stdout.decode()) == [str(i) for i in range(1, N_STREAMED + 1)]


def test_progress_counts_only_regular_files(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(jsonl_records(5))
    assert count_documents(tmp_path / "in.jsonl") == 5
    os.mkfifo(tmp_path / "pipe.jsonl")  # opening it to count would wait for a writer forever
    assert count_documents(tmp_path / "pipe.jsonl") is None
    assert count_documents("/dev/stdin", "lines") is None


# --- one file, one encoding: a line in another is named, never decoded as mojibake -------------

UTF8_LINES = [f"{SPORTS} {i}" for i in range(3)]
CP1256_LINE = ECONOMY * 4


def jsonl_line(text: str) -> bytes:
    return json.dumps({"text": text, "label": "x"}, ensure_ascii=False).encode()


def test_a_windows_1256_line_in_a_utf8_file_is_named(tmp_path):
    # first: a long cp1256 line would make the head look like Windows-1256 and turn the rest into mojibake
    first = [jsonl_line(CP1256_LINE).replace(CP1256_LINE.encode(), CP1256_LINE.encode("cp1256"))]
    utf8 = [jsonl_line(text) for text in UTF8_LINES]
    for name, lines, number in (("first.jsonl", first + utf8, 1), ("third.jsonl", utf8[:2] + first + utf8[2:], 3)):
        (tmp_path / name).write_bytes(b"\n".join(lines) + b"\n")
        with pytest.raises(QismError, match=f"{name}: line {number}: not valid utf-8 at byte"):
            list(read_source(tmp_path / name))
    lines = [line.encode() for line in UTF8_LINES]
    (tmp_path / "lines.txt").write_bytes(b"\n".join([CP1256_LINE.encode("cp1256"), *lines]))
    with pytest.raises(QismError, match="lines.txt: line 1: not valid utf-8"):
        list(read_source(tmp_path / "lines.txt", ReadOptions(require_labels=False), "lines"))
    write_tree(tmp_path / "c", {"sports/1.txt": b"\n".join([*lines, CP1256_LINE.encode("cp1256")])})
    with pytest.raises(QismError, match=r"sports/1.txt: line 4: not valid utf-8 at byte"):
        list(read_source(tmp_path / "c"))
    replaced = [doc.text for doc in read_source(tmp_path / "first.jsonl", ReadOptions(errors="replace"))]
    assert replaced[1:] == UTF8_LINES and "\ufffd" in replaced[0]  # the UTF-8 lines stay right


def test_a_utf8_line_in_a_windows_1256_file_is_named(tmp_path):
    cp1256 = [
        jsonl_line(f"{CP1256_LINE} {i}").replace(CP1256_LINE.encode(), CP1256_LINE.encode("cp1256")) for i in range(40)
    ]
    (tmp_path / "t.jsonl").write_bytes(b"\n".join(cp1256[:30] + [jsonl_line(SPORTS)] + cp1256[30:]))
    with pytest.raises(QismError, match="t.jsonl: line 31: UTF-8 in a file read as windows-1256"):
        list(read_source(tmp_path / "t.jsonl"))
    docs = list(read_source(tmp_path / "t.jsonl", ReadOptions(encoding="cp1256")))  # the user's choice stands
    assert len(docs) == 41 and docs[0].text == f"{CP1256_LINE} 0"
    article = b"\n".join([CP1256_LINE.encode("cp1256")] * 5 + [SPORTS.encode()])
    write_tree(tmp_path / "c", {"sports/1.txt": article})
    with pytest.raises(QismError, match="sports/1.txt: line 6: UTF-8 in a file read as windows-1256"):
        list(read_source(tmp_path / "c"))
    write_tree(tmp_path / "pure", {"sports/1.txt": "\n".join([CP1256_LINE] * 5).encode("cp1256")})
    assert [doc.text for doc in read_source(tmp_path / "pure")] == ["\n".join([CP1256_LINE] * 5)]


# --- gzip, lines and fields are bounded like archives and articles ----------------------------


def concatenated_gzip(path: Path, member: bytes, copies: int) -> Path:
    """A gzip file of `copies` identical members: it unpacks to copies x len(member), cheaply made."""
    packed = gzip.compress(member, 9)
    with open(path, "wb") as handle:
        for _ in range(copies):
            handle.write(packed)
    return path


def test_gzip_that_unpacks_past_the_archive_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus.limits, "MAX_ARCHIVE_BYTES", 100_000)
    bomb = concatenated_gzip(tmp_path / "bomb.jsonl.gz", jsonl_records(100), 20)  # ~180 KB unpacked
    with pytest.raises(QismError, match=r"bomb.jsonl.gz: unpacks to more than 100,000 bytes.*gzip bomb"):
        list(read_source(bomb, ReadOptions(require_labels=False)))
    small = concatenated_gzip(tmp_path / "small.jsonl.gz", jsonl_records(100), 5)
    assert len(list(read_source(small, ReadOptions(require_labels=False)))) == 500


def test_lines_and_fields_past_the_article_limit_are_refused_by_line(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus.limits, "MAX_FILE_BYTES", 1000)
    long = SPORTS * 40
    (tmp_path / "t.jsonl").write_bytes(jsonl_line(SPORTS) + b"\n" + jsonl_line(long) + b"\n")
    (tmp_path / "t.csv").write_text(f'text,label\n{SPORTS},x\n"{long}\n{long}",x\n', encoding="utf-8")
    (tmp_path / "field.csv").write_text(f'text,label\n{SPORTS},x\n"{(SPORTS + chr(10)) * 40}",x\n', encoding="utf-8")
    (tmp_path / "t.txt").write_text(f"{SPORTS}\n{long}\n", encoding="utf-8")
    for name, fmt, where in (
        ("t.jsonl", None, "line 2"),
        ("t.csv", None, "line 3"),
        ("field.csv", None, "line 3"),
        ("t.txt", "lines", "line 2"),
    ):
        options = ReadOptions(require_labels=fmt is None)
        with pytest.raises(QismError, match=f"{name}: {where}: .*more than the 1,000 .*split it into articles"):
            list(read_source(tmp_path / name, options, fmt))
    (tmp_path / "ok.jsonl").write_bytes(jsonl_line(SPORTS) + b"\n")
    assert len(list(read_source(tmp_path / "ok.jsonl"))) == 1


def test_one_article_from_a_pipe_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus.limits, "MAX_FILE_BYTES", 1000)
    fifo = tmp_path / "article"
    feed_fifo(fifo, (SPORTS * 100).encode())
    with pytest.raises(QismError, match="more than the 1,000 qism reads as one article"):
        within(60, lambda: list(read_source(fifo, ReadOptions(require_labels=False), "txt")))


def test_memory_error_while_reading_is_one_line(tmp_path, tiny_model_dir, monkeypatch):
    (tmp_path / "in.jsonl").write_bytes(jsonl_records(3))

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(corpus.records, "_json_record", exhausted)
    assert_user_error(run("predict", "--model", tiny_model_dir, "--input", tmp_path / "in.jsonl"), "out of memory")


def test_a_gzip_bomb_under_a_memory_cap_is_one_line_not_a_traceback(tmp_path, tiny_model_dir):
    """Real limits, real memory: a 3 GB line in a 3 MB gzip, read with 1.5 GB of address space."""
    bomb = concatenated_gzip(tmp_path / "bomb.jsonl.gz", b"a" * (1 << 20), 3000)
    cap = 1536 << 20

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        qism("predict", "--model", tiny_model_dir, "--input", bomb, "--jobs", "1"),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_memory,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "bomb.jsonl.gz" in result.stderr or "out of memory" in result.stderr


# --- links out of the corpus folder -----------------------------------------------------------


def test_links_out_of_the_corpus_are_skipped_and_counted(tmp_path, tiny_model_dir):
    secret = write_tree(tmp_path / "outside", {"secret.txt": "كلمة السر للنظام " * 5, "economy/1.txt": ECONOMY})
    corpus_dir = tiny_plus(tmp_path, {})
    os.symlink(secret / "secret.txt", corpus_dir / "sports" / "secret.txt")  # a file outside
    os.symlink(secret / "economy", corpus_dir / "stolen")  # a folder outside
    os.symlink(corpus_dir / "sports" / "01.txt", corpus_dir / "economy" / "inside.txt")  # a link within: read
    docs = list(read_source(corpus_dir))
    outside = {doc.id: doc for doc in docs if doc.problem == corpus.OUTSIDE_CORPUS}
    assert set(outside) == {"sports/secret.txt", "stolen/"} and not any(doc.text for doc in outside.values())
    assert "economy/inside.txt" in {doc.id for doc in docs if doc.problem is None}
    card = train([corpus_dir], TrainConfig(test_size=0, min_df=1)).card
    assert card["dropped"]["outside_corpus"] == 2
    assert not any("كلمة" in str(value) for value in card.values())
    report = tmp_path / "report"
    result = run("evaluate", tiny_model_dir, corpus_dir, "--report", report)
    assert result.exit_code == 0, result.output
    assert "كلمة السر" not in (report / "report.html").read_text(encoding="utf-8")
    folder = write_tree(tmp_path / "in", {"1.txt": SPORTS})
    os.symlink(secret / "secret.txt", folder / "2.txt")
    result = run("predict", "--model", tiny_model_dir, "--input", folder, "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r.get("reason")) for r in records] == [("1.txt", None), ("2.txt", "outside corpus")]


# --- deep trees and closed standard streams ---------------------------------------------------

DEPTH = 2000


@pytest.fixture
def deep_tree(tmp_path, monkeypatch):
    """`deep/dd/dd/.../1.txt`, 2,000 folders deep: its path is longer than a path may be, so it is
    made (and removed) one folder at a time from the folder above."""
    root = tmp_path / "deep"
    root.mkdir()
    monkeypatch.chdir(root)
    for _ in range(DEPTH):
        os.mkdir("dd")
        os.chdir("dd")
    Path("1.txt").write_text(SPORTS, encoding="utf-8")
    os.chdir(tmp_path)
    yield root
    os.chdir(root)
    for _ in range(DEPTH):
        os.chdir("dd")
    os.remove("1.txt")
    for _ in range(DEPTH):
        os.chdir("..")
        os.rmdir("dd")
    os.chdir(tmp_path)


def test_a_2000_level_folder_tree_is_one_line(deep_tree, tmp_path, tiny_model_dir):
    for args in (
        ("train", deep_tree, "--out", tmp_path / "m"),
        ("predict", "--model", tiny_model_dir, "--input", deep_tree),
    ):
        result = subprocess.run(qism(*args), capture_output=True, text=True, timeout=120)
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
        assert "too long" in result.stderr


def shell(command: list, redirect: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"{shlex.join(map(str, command))} {redirect}"], capture_output=True, text=True, timeout=120
    )


def test_closed_stdout_or_stderr_and_a_closed_pipe_give_no_traceback(tmp_path, tiny_model_dir):
    (tmp_path / "in.jsonl").write_bytes(jsonl_records(3000))
    predict = qism("predict", "--model", tiny_model_dir, "--input", tmp_path / "in.jsonl", "--format", "jsonl")
    closed_stdout = shell(predict, ">&-")
    assert closed_stdout.returncode == 1
    assert closed_stdout.stderr.strip().splitlines() == [
        "qism: error: standard output is closed; write the records to a file with --output"
    ]
    closed_stderr = shell(predict, "2>&-")
    assert closed_stderr.returncode == 0 and len(closed_stderr.stdout.splitlines()) == 3000
    failing = shell(qism("predict", "--model", tmp_path / "none"), "2>&-")
    assert failing.returncode == 1 and failing.stdout == ""
    head = shell(predict, "| head -1")
    assert head.returncode == 0 and len(head.stdout.splitlines()) == 1 and head.stderr == "", head.stderr
    info = shell(qism("info", tiny_model_dir), ">&-")
    assert "Traceback" not in info.stderr
    full = shell(predict, ">/dev/full")
    assert full.returncode == 1 and len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert "No space left" in full.stderr
