"""The model-size cap true to its word: what a model's files claim once loaded is counted from their
sizes and the arrays' headers before anything is allocated, the classifier's weights twice (it keeps
a copy by feature) and the JSON files as parsed; each array is read once, into memory allocated for
it. (A hand-edited 27 MB model took 8.2 GB to load under a 4 GiB cap; `bench/model_memory.py`
measures the peak.)"""

import shutil
import zipfile

import pytest
from qism import QismError, load_model
from qism import model as model_module
from qism.model import ARRAYS_FILE, CARD_FILE, LOAD_ALLOWANCE, LOADED_JSON_PER_BYTE, PIPELINE_FILE


def claims(directory):
    """(qism's allowance and the JSON as parsed, arrays unpacked, weights unpacked) of a model folder."""
    with zipfile.ZipFile(directory / ARRAYS_FILE) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    parsed = LOADED_JSON_PER_BYTE * sum((directory / name).stat().st_size for name in (CARD_FILE, PIPELINE_FILE))
    return LOAD_ALLOWANCE + parsed, sum(sizes.values()), sizes["classifier.coef_.npy"]


@pytest.mark.parametrize("short_of", ["the weights' copy", "qism's allowance and the parsed JSON"])
def test_a_model_claiming_more_than_the_cap_is_refused_before_reading(tiny_model_dir, tmp_path, monkeypatch, short_of):
    directory = shutil.copytree(tiny_model_dir, tmp_path / "model")
    parsed, unpacked, weights = claims(directory)
    cap = parsed + unpacked + weights // 2 if short_of == "the weights' copy" else parsed // 2 + unpacked + 2 * weights
    monkeypatch.setattr(model_module, "MAX_ARRAYS_BYTES", cap)
    read = []
    monkeypatch.setattr(model_module, "_read_declared", lambda archive, declared: read.append(declared))
    with pytest.raises(QismError, match="once loaded"):
        load_model(directory)
    assert read == []


def test_a_model_within_the_cap_loads_with_the_same_arrays(tiny_model_dir, monkeypatch):
    parsed, unpacked, weights = claims(tiny_model_dir)
    monkeypatch.setattr(model_module, "MAX_ARRAYS_BYTES", parsed + unpacked + weights)
    monkeypatch.setattr(model_module, "READ_BLOCK", 7)  # blocks that cut every array and element
    model = load_model(tiny_model_dir)
    monkeypatch.undo()
    whole = load_model(tiny_model_dir)
    for step in ("features", "classifier"):
        for key, value in vars(whole.pipeline.named_steps[step]).items():
            if key.endswith("_") and hasattr(value, "tobytes"):
                assert getattr(model.pipeline.named_steps[step], key).tobytes() == value.tobytes(), key
