"""Labeling on a Dask cluster: real clusters (a LocalCluster of processes, and `dask scheduler` and
`dask worker` processes on 127.0.0.1), every id labeled exactly once, the same labels as `qism predict`."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE
from qism import read_source
from qism.cli import app
from qism.errors import QismError
from typer.testing import CliRunner

distributed = pytest.importorskip("distributed")

from qism import cluster  # noqa: E402  (after the skip: it needs the dask extra)

runner = CliRunner()


def write_inputs(folder: Path, n_files: int, per_file: int) -> list[str]:
    """JSON Lines files of the sample articles, each record with an id found nowhere else."""
    texts = [doc.text for doc in read_source(SAMPLE)]
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for f in range(n_files):
        with open(folder / f"part{f:02d}.jsonl", "w", encoding="utf-8") as handle:
            for i in range(per_file):
                ids.append(f"{f}-{i}")
                handle.write(
                    json.dumps({"id": ids[-1], "text": texts[(i * 7 + f) % len(texts)]}, ensure_ascii=False) + "\n"
                )
    return ids


def read_outputs(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("*.labels.jsonl*")):
        if path.name.endswith(cluster.MANIFEST_SUFFIX):
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle]
    return records


def local_labels(model_dir: Path, inputs: Path, tmp_path: Path) -> dict[str, dict]:
    """What `qism predict` gives for the same articles, by id."""
    combined = tmp_path / "all.jsonl"
    combined.write_text(
        "".join(p.read_text(encoding="utf-8") for p in sorted(inputs.glob("*.jsonl"))), encoding="utf-8"
    )
    result = runner.invoke(
        app,
        [
            "predict",
            "-m",
            str(model_dir),
            "--input",
            str(combined),
            "--format",
            "jsonl",
            "--output",
            str(tmp_path / "local.jsonl"),
            "--quiet",
            "-j",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text(encoding="utf-8").splitlines()]
    return {record["id"]: record for record in records}


def assert_each_id_once_as_local(records: list[dict], ids: list[str], local: dict[str, dict]) -> None:
    labeled = [record["id"] for record in records]
    assert sorted(labeled) == sorted(ids)  # every id, none twice
    assert all(record == local[record["id"]] for record in records)


@pytest.fixture(scope="module")
def local_cluster():
    """A LocalCluster of two worker processes, one thread each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        yield lc.scheduler_address


def test_local_cluster_labels_every_file_like_predict(local_cluster, sample_model_dir, tmp_path):
    ids = write_inputs(tmp_path / "in", 5, 40)
    summary = cluster.label_files(
        str(tmp_path / "in"), str(tmp_path / "out"), model=sample_model_dir, scheduler=local_cluster
    )
    assert summary["labeled"] == 5 and summary["records"] == 200
    assert_each_id_once_as_local(
        read_outputs(tmp_path / "out"), ids, local_labels(sample_model_dir, tmp_path / "in", tmp_path)
    )
    manifest = json.loads((tmp_path / "out" / "part00.jsonl.labels.jsonl.manifest.json").read_text())
    assert manifest["records"] == 40
    assert manifest["output_bytes"] == (tmp_path / "out" / "part00.jsonl.labels.jsonl").stat().st_size


def test_resume_skips_finished_files_only(local_cluster, sample_model_dir, tmp_path):
    write_inputs(tmp_path / "in", 3, 20)
    out = tmp_path / "out"
    cluster.label_files(str(tmp_path / "in" / "*.jsonl"), str(out), model=sample_model_dir, scheduler=local_cluster)
    first = (out / "part00.jsonl.labels.jsonl").read_bytes()
    (out / "part01.jsonl.labels.jsonl").unlink()  # as if the run had died before this file
    again = cluster.label_files(
        str(tmp_path / "in"), str(out), model=sample_model_dir, scheduler=local_cluster, resume=True
    )
    assert (again["labeled"], again["skipped"]) == (1, 2)
    assert [m["input"] for m in again["files"]] == [str((tmp_path / "in" / "part01.jsonl").resolve())]
    assert (out / "part00.jsonl.labels.jsonl").read_bytes() == first
    assert len(read_outputs(out)) == 60


def test_gzip_and_parquet_outputs_and_parquet_input(local_cluster, sample_model_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ids = write_inputs(tmp_path / "in", 2, 30)
    local = local_labels(sample_model_dir, tmp_path / "in", tmp_path)
    cluster.label_files(
        str(tmp_path / "in"), str(tmp_path / "gz"), model=sample_model_dir, scheduler=local_cluster, compress=True
    )
    assert sorted((tmp_path / "gz").glob("*.gz")) and all(
        p.suffix == ".gz" for p in (tmp_path / "gz").glob("*.labels.jsonl*") if not p.name.endswith(".json")
    )
    assert_each_id_once_as_local(read_outputs(tmp_path / "gz"), ids, local)
    # the same articles as Parquet in, Parquet out
    (tmp_path / "pq").mkdir()
    for path in sorted((tmp_path / "in").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pq" / (path.stem + ".parquet"))
    cluster.label_files(
        str(tmp_path / "pq"),
        str(tmp_path / "pq-out"),
        model=sample_model_dir,
        scheduler=local_cluster,
        output_format="parquet",
    )
    records = []
    for path in sorted((tmp_path / "pq-out").glob("*.labels.parquet")):
        records += pq.read_table(path).to_pylist()
    assert sorted(r["id"] for r in records) == sorted(ids)
    for record in records:
        assert record["label"] == local[record["id"]]["label"]
        assert [(t["label"], t["score"]) for t in record["top"]] == [
            (t["label"], t["score"]) for t in local[record["id"]]["top"]
        ]


def test_inputs_of_the_same_name_are_refused(sample_model_dir, tmp_path):
    write_inputs(tmp_path / "a", 1, 2)
    write_inputs(tmp_path / "b", 1, 2)
    with pytest.raises(QismError, match="distinct names"):
        cluster.label_files(str(tmp_path / "*" / "*.jsonl"), str(tmp_path / "out"), model=sample_model_dir)


def test_cli_checks_engine_options(tmp_path):
    result = runner.invoke(app, ["predict", "--scheduler", "tcp://127.0.0.1:1", "some text"])
    assert result.exit_code == 1 and "--scheduler is for --engine dask" in result.output
    result = runner.invoke(app, ["predict", "--engine", "dask", "--input", str(tmp_path)])
    assert result.exit_code == 1 and "--output" in result.output
    result = runner.invoke(app, ["predict", "--engine", "spark", "x"])
    assert result.exit_code == 1 and "--engine is one of local, dask" in result.output
    result = runner.invoke(
        app, ["predict", "--engine", "dask", "--input", str(tmp_path), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "no input files" in result.output


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the package were not installed
    with pytest.raises(QismError, match=r"pip install 'qism\[dask\]'"):
        cluster.require_extra("distributed", "dask")


# --- a real scheduler and two workers, one killed mid-run -------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args], stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )  # its own process group, so a worker and its children die together


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def scheduler_and_two_workers(tmp_path):
    """`dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1, stopped at the end."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    processes = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        for i in range(2):
            processes.append(
                _start(
                    [
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--memory-limit",
                        "0",
                        "--name",
                        f"worker-{i}",
                        "--local-directory",
                        str(tmp_path / f"worker-{i}"),
                    ],
                    tmp_path / f"worker-{i}.log",
                )
            )
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, processes[1:]
    finally:
        for process in reversed(processes):
            _stop(process)


def test_a_killed_worker_loses_and_duplicates_nothing(scheduler_and_two_workers, sample_model_dir, tmp_path):
    address, workers = scheduler_and_two_workers
    n_files = 12
    ids = write_inputs(tmp_path / "in", n_files, 800)
    out = tmp_path / "out"
    outcome: dict = {}

    def run():
        try:
            outcome["summary"] = cluster.label_files(
                str(tmp_path / "in"), str(out), model=sample_model_dir, scheduler=address
            )
        except BaseException as err:
            outcome["error"] = err

    with distributed.Client(address, timeout="60s") as client:
        first = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "worker-0")
        labeling = threading.Thread(target=run)
        labeling.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and labeling.is_alive():
            if list(out.glob("*.manifest.json")) and client.processing(workers=[first]).get(first):
                break  # some files are done, and the worker to kill has tasks
            time.sleep(0.005)
        busy = bool(client.processing(workers=[first]).get(first))
        finished_at_kill = len(list(out.glob("*.manifest.json")))
        _stop(workers[0])  # SIGKILL to the worker and its nanny, mid-run
    labeling.join(timeout=300)
    assert not labeling.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert busy and 1 <= finished_at_kill < n_files  # the kill did come in the middle of the run
    assert outcome["summary"]["labeled"] == n_files
    assert_each_id_once_as_local(read_outputs(out), ids, local_labels(sample_model_dir, tmp_path / "in", tmp_path))
    assert not list(out.glob(".*.part"))  # what the killed task had started is gone


# --- object storage: S3 URLs through a local moto server -------------------------------------


@pytest.fixture
def s3_server(tmp_path, monkeypatch):
    """A moto S3 server process on 127.0.0.1, and the environment that points S3 clients at it."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    port = _free_port()
    with open(tmp_path / "moto.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"moto server did not start: {(tmp_path / 'moto.log').read_text()[-2000:]}")
                time.sleep(0.1)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)  # workers of a cluster started from here inherit them
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps filesystems, with an earlier test's endpoint
        yield endpoint
    finally:
        _stop(server)


def test_s3_input_and_output(s3_server, sample_model_dir, tmp_path):
    import fsspec

    ids = write_inputs(tmp_path / "in", 3, 25)
    fs = fsspec.filesystem("s3", endpoint_url=s3_server)
    fs.mkdir("qism-test")
    for path in sorted((tmp_path / "in").glob("*.jsonl")):
        fs.put(str(path), f"qism-test/in/{path.name}")
    summary = cluster.label_files("s3://qism-test/in/", "s3://qism-test/out", model=sample_model_dir, n_workers=2)
    assert summary["labeled"] == 3
    records = []
    for name in sorted(fs.ls("qism-test/out")):
        if name.endswith(".labels.jsonl"):
            with fs.open(name, "rt", encoding="utf-8") as handle:
                records += [json.loads(line) for line in handle]
    assert_each_id_once_as_local(records, ids, local_labels(sample_model_dir, tmp_path / "in", tmp_path))
    again = cluster.label_files(
        "s3://qism-test/in/*.jsonl", "s3://qism-test/out", model=sample_model_dir, n_workers=2, resume=True
    )
    assert (again["labeled"], again["skipped"]) == (0, 3)


def test_a_big_file_is_labeled_in_shards(local_cluster, sample_model_dir, tmp_path):
    ids = write_inputs(tmp_path / "in", 1, 150)
    size = (tmp_path / "in" / "part00.jsonl").stat().st_size
    summary = cluster.label_files(
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        model=sample_model_dir,
        scheduler=local_cluster,
        shard_bytes=-(-size // 4),
    )
    assert summary["labeled"] == 4 and summary["records"] == 150
    assert (tmp_path / "out" / "part00.jsonl.00001-of-00004.labels.jsonl").is_file()
    assert_each_id_once_as_local(
        read_outputs(tmp_path / "out"), ids, local_labels(sample_model_dir, tmp_path / "in", tmp_path)
    )


def test_resume_relabels_an_input_edited_to_the_same_size(local_cluster, sample_model_dir, tmp_path):
    write_inputs(tmp_path / "in", 2, 10)
    out = tmp_path / "out"
    cluster.label_files(str(tmp_path / "in"), str(out), model=sample_model_dir, scheduler=local_cluster)
    edited = tmp_path / "in" / "part00.jsonl"
    lines = edited.read_text(encoding="utf-8").splitlines(keepends=True)
    size = edited.stat().st_size
    edited.write_text("".join([lines[1].replace('"0-1"', '"0-0"'), lines[0].replace('"0-0"', '"0-1"')] + lines[2:]))
    assert edited.stat().st_size == size
    again = cluster.label_files(
        str(tmp_path / "in"), str(out), model=sample_model_dir, scheduler=local_cluster, resume=True
    )
    assert (again["labeled"], again["skipped"]) == (1, 1)
    relabeled = [json.loads(line) for line in (out / "part00.jsonl.labels.jsonl").read_text().splitlines()]
    local = local_labels(sample_model_dir, tmp_path / "in", tmp_path)
    assert [r["id"] for r in relabeled[:2]] == ["0-0", "0-1"] and all(r == local[r["id"]] for r in relabeled)


def test_the_cli_writes_to_the_object_store_it_names(s3_server, sample_model_dir, tmp_path, monkeypatch):
    import fsspec

    write_inputs(tmp_path / "in", 1, 5)
    fs = fsspec.filesystem("s3", endpoint_url=s3_server)
    fs.mkdir("qism-cli")
    monkeypatch.chdir(tmp_path)
    command = ["predict", "-m", str(sample_model_dir), "--engine", "dask", "-j", "1", "-q", "--input", "in"]
    result = runner.invoke(app, [*command, "--output", "s3://qism-cli/labels/"])
    assert result.exit_code == 0, result.output
    assert fs.exists("qism-cli/labels/part00.jsonl.labels.jsonl")
    assert not (tmp_path / "s3:").exists()


def test_options_that_do_not_apply_to_the_engine_are_refused_or_work(local_cluster, sample_model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    texts = [doc.text.replace("\n", " ") for doc in read_source(SAMPLE)][:6]
    (tmp_path / "in" / "headlines.jsonl").write_text("\n".join(texts) + "\n", encoding="utf-8")
    command = ["predict", "-m", str(sample_model_dir), "-q", "--input", str(tmp_path / "in")]
    dask = [*command, "--engine", "dask", "--scheduler", local_cluster, "--output", str(tmp_path / "out")]
    result = runner.invoke(app, [*dask, "--bom"])
    assert result.exit_code == 1 and "--bom is for --format csv" in result.stderr
    result = runner.invoke(app, [*command, "--gzip", "--output", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "--gzip is for --engine dask" in result.stderr
    result = runner.invoke(app, [*dask, "--lines"])  # each line an article, though the name says JSON Lines
    assert result.exit_code == 0, result.output
    assert len(read_outputs(tmp_path / "out")) == 6
