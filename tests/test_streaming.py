"""Streaming training: exact corpus statistics from chunks, shard models close to the in-memory fit,
and the in-memory path unchanged for corpora that fit."""

from collections import Counter

import numpy as np
import pytest
from conftest import SAMPLE, corpus, model_arrays
from qism import TrainConfig, read_source, streaming, train
from qism import config as qism_config
from qism.cli import app
from qism.errors import QismError
from qism.trainer import fit, prepare
from typer.testing import CliRunner

runner = CliRunner()


def test_in_memory_training_is_the_fit_of_the_prepared_corpus():
    """`train` on a corpus that fits is `fit(prepare(...))`, array for array, and says so on the card."""
    config = TrainConfig()
    model = train([SAMPLE], config, n_jobs=1)
    pipeline = fit(prepare((str(SAMPLE), doc) for doc in read_source(SAMPLE)), config, n_jobs=1).pipeline
    expected = model_arrays(type(model)(pipeline, {}))
    for name, values in model_arrays(model).items():
        assert np.array_equal(values, expected[name]), name
    assert model.card["training"]["path"] == "in-memory"


def test_one_shard_gives_the_in_memory_model():
    """Counted in chunks, the statistics are those of the whole corpus: with one shard and no
    calibration share, streaming fits the same model as in memory."""
    in_memory = model_arrays(train([SAMPLE], TrainConfig(), n_jobs=1))
    streamed_model = train([SAMPLE], TrainConfig(), n_jobs=1, streaming=True)
    streamed = model_arrays(streamed_model)
    for name, values in in_memory.items():
        np.testing.assert_array_equal(streamed[name], values, err_msg=name)
    assert streamed_model.card["training"]["path"] == "streaming"
    assert streamed_model.card["training"]["shards"] == 1


def test_chunks_smaller_than_the_corpus_count_the_same(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_DOCUMENTS", 17)
    in_memory = model_arrays(train([SAMPLE], TrainConfig(), n_jobs=1))
    streamed = model_arrays(train([SAMPLE], TrainConfig(), n_jobs=1, streaming=True))
    for name in ("columns", "idf", "boilerplate"):
        assert np.array_equal(streamed[name], in_memory[name]), name


def test_averaged_shard_models_score_close_to_the_in_memory_fit(monkeypatch):
    path = corpus("asnd/sm_news_ar_trn.csv")
    config = TrainConfig(test_size=0.2)
    in_memory = train([path], config)
    monkeypatch.setattr(streaming, "SHARD_DOCUMENTS", 1500)
    streamed = train([path], config, streaming=True)
    assert streamed.card["training"]["shards"] >= 3 and streamed.card["training"]["calibration_shards"] == 1
    assert streamed.card["split"] == in_memory.card["split"]
    assert streamed.card["scores"]["documents"] == in_memory.card["scores"]["documents"]
    assert abs(streamed.card["scores"]["macro_f1"] - in_memory.card["scores"]["macro_f1"]) < 0.015


def test_a_corpus_over_the_memory_budget_streams(tiny):
    assert train([SAMPLE], TrainConfig(), memory_budget=10_000).card["training"]["path"] == "streaming"
    assert train([SAMPLE], TrainConfig(), memory_budget=1 << 40).card["training"]["path"] == "in-memory"
    assert streaming.input_bytes([str(corpus("ant-v2.1.jsonl.gz"))]) > 80_000_000  # its uncompressed size


def test_streaming_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(QismError, match="standard input"):
        train(["-"], TrainConfig(), streaming=True)
    with pytest.raises(QismError, match="fits linear learners"):
        train([SAMPLE], TrainConfig(classifier="complement_nb"), streaming=True)
    with pytest.raises(QismError, match="autotune"):
        train([SAMPLE], TrainConfig(), streaming=True, autotune=10)


@pytest.mark.parametrize("text, size", [("2GB", 2 << 30), ("500m", 500 << 20), ("1.5g", 3 << 29), ("4096", 4096)])
def test_sizes(text, size):
    assert qism_config.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "2PB", "nan"])
def test_bad_sizes(text):
    with pytest.raises(QismError, match="--memory-budget"):
        qism_config.parse_size(text)


def test_cli_streaming_says_which_path_ran(tmp_path):
    result = runner.invoke(app, ["train", str(SAMPLE), "--out", str(tmp_path / "m"), "--streaming"])
    assert result.exit_code == 0, result.output
    assert "streaming" in result.output.splitlines()[0]
    result = runner.invoke(app, ["train", str(SAMPLE), "--out", str(tmp_path / "m"), "--memory-budget", "lots"])
    assert result.exit_code == 1 and "--memory-budget" in result.output


def test_training_on_a_cluster_counts_as_here(tmp_path, monkeypatch):
    """Chunks cleaned and counted on a Dask cluster of two processes give the statistics and model of
    streaming here."""
    distributed = pytest.importorskip("distributed")
    from qism import cluster

    monkeypatch.setattr(streaming, "CHUNK_DOCUMENTS", 30)  # several chunks in flight
    here = train([SAMPLE], TrainConfig(), n_jobs=1, streaming=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        model = cluster.train_and_save_on_cluster(
            tmp_path / "m", [str(SAMPLE)], scheduler=lc.scheduler_address, n_jobs=1
        )
        with pytest.raises(QismError, match="drop --in-memory"):
            cluster.train_and_save_on_cluster(
                tmp_path / "m2", [str(SAMPLE)], scheduler=lc.scheduler_address, streaming=False
            )
    assert model.card["training"]["chunks_on"] == "dask" and here.card["training"]["chunks_on"] == "local"
    for name, values in model_arrays(model).items():
        assert np.array_equal(values, model_arrays(here)[name]), name


def test_averaged_shard_models_are_fitted_on_the_cluster_as_here(tmp_path, monkeypatch):
    """linear_svc averages one model per shard: on a Dask cluster the shard fits are tasks there,
    and the model is the one fitted here."""
    distributed = pytest.importorskip("distributed")
    from dask.utils import key_split
    from qism import cluster

    monkeypatch.setattr(streaming, "SHARD_DOCUMENTS", 30)  # three shards of the sample's training split
    config = {"classifier": "linear_svc"}
    here = train([SAMPLE], TrainConfig(**config), n_jobs=1, streaming=True)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc,
        distributed.Client(lc) as watcher,
        distributed.get_task_stream(watcher) as tasks,
    ):
        model = cluster.train_and_save_on_cluster(
            tmp_path / "m", [str(SAMPLE)], scheduler=lc.scheduler_address, n_jobs=1, train_options=config
        )
    ran = Counter(key_split(task["key"]) for task in tasks.data)  # what ran on the workers, by function
    assert here.card["training"]["shards"] >= 3 and model.card["training"]["shard_fits_on"] == "dask"
    assert ran[streaming.fit_shard.__name__] == here.card["training"]["shards"]  # one task per shard
    for name, values in model_arrays(model).items():
        np.testing.assert_array_equal(values, model_arrays(here)[name], err_msg=name)
