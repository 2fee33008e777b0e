"""Model folders passed around by colleagues: loading never runs code from them, a damaged or
altered one is refused before use, one from other versions loads or names both versions, and a
failed save leaves the previous model as it was.

Each crafted model is resealed (its checksums in card.json recomputed), as an attacker would, so the
refusal shown is the loader's, not the checksum's.
"""

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import sklearn

from training import QismError, TrainConfig, load_model, train
from training import model as model_module
from training.card import qism_version
from training.model import ARRAYS_FILE, CARD_FILE, PIPELINE_FILE

from conftest import FIXTURES, SPORTS, assert_user_error, run



@pytest.fixture
def model_dir(tmp_path, tiny_model_dir) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def marker(tmp_path) -> Path:
    """The file a payload creates when it runs."""
    return tmp_path / "payload-ran"


def reseal(directory: Path) -> None:
    """Make the card's checksums match the (tampered) files."""
    card = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
    card["files"] = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in (PIPELINE_FILE, ARRAYS_FILE)}
    (directory / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")


def edit_spec(directory: Path, change) -> None:
    spec = json.loads((directory / PIPELINE_FILE).read_text(encoding="utf-8"))
    change(spec)
    (directory / PIPELINE_FILE).write_text(json.dumps(spec), encoding="utf-8")
    reseal(directory)


def step(spec: dict, name: str) -> dict:
    return dict(spec["pipeline"]["steps"])[name]


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


# --- no code runs from a model file -----------------------------------------------------------

def test_pickled_object_array_in_arrays_npz_is_refused_and_does_not_run(model_dir, marker, tmp_path):
    with np.load(model_dir / ARRAYS_FILE) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    contents["classifier.classes_"] = np.array([Payload(marker)], dtype=object)
    np.savez(model_dir / ARRAYS_FILE, **contents)
    reseal(model_dir)
    with pytest.raises(QismError, match="Object arrays cannot be loaded when allow_pickle=False"):
        load_model(model_dir)
    assert not marker.exists()
    # the payload is live: a pickle-trusting loader would have run it
    live = tmp_path / "live-copy.npz"
    shutil.copy(model_dir / ARRAYS_FILE, live)
    np.load(live, allow_pickle=True)["classifier.classes_"]
    assert marker.exists()


def test_arrays_npz_that_is_a_pickle_is_refused_and_does_not_run(model_dir, marker):
    (model_dir / ARRAYS_FILE).write_bytes(pickle.dumps(Payload(marker)))
    reseal(model_dir)
    with pytest.raises(QismError, match=r"cannot read the model \(This file contains pickled"):
        load_model(model_dir)
    assert not marker.exists()


def test_pickle_files_beside_the_model_are_never_opened(model_dir, marker):
    for name in ("pipeline.pkl", "model.joblib", "__init__.py"):
        (model_dir / name).write_bytes(pickle.dumps(Payload(marker)))
    assert load_model(model_dir).predict([SPORTS]) == ["sports"]
    assert not marker.exists()


@pytest.mark.parametrize("cls", ["os.system", "subprocess.Popen", "builtins.exec", "builtins.eval",
                                 "sklearn.preprocessing.FunctionTransformer", "training.model.load_model", "Model"])
@pytest.mark.parametrize("where", ["pipeline", "features", "cleaner"])
def test_classes_outside_the_whitelist_are_refused(model_dir, marker, cls, where):
    payload = {"class": cls, "params": {"command": f"touch {marker}", "args": ["touch", str(marker)],
                                        "func": "os.system", "source": f"open({str(marker)!r}, 'w')"}}

    def plant(spec):
        if where == "pipeline":
            spec["pipeline"] = payload
        elif where == "features":
            spec["pipeline"]["steps"][0][1] = payload
        else:
            step(spec, "features")["params"]["cleaner"] = payload

    edit_spec(model_dir, plant)
    with pytest.raises(QismError, match=f"model names a class qism does not load: '{cls}'"):
        load_model(model_dir)
    assert not marker.exists()


@pytest.mark.parametrize("attribute", ["__class__", "__dict__", "__reduce__", "_lookup", "_compiled_key", "predict", "fit"])
def test_dunder_private_and_method_attributes_are_refused(model_dir, attribute):
    edit_spec(model_dir, lambda spec: step(spec, "classifier")["fitted"].update({attribute: "os.system"}))
    with pytest.raises(QismError, match=f"model sets a non-fitted attribute '{attribute}'"):
        load_model(model_dir)


@pytest.mark.parametrize("parameter", ["__init__", "__class__", "_compiled_key", "command"])
def test_unknown_dunder_and_private_parameters_are_refused(model_dir, parameter):
    edit_spec(model_dir, lambda spec: step(spec, "features")["params"].update({parameter: "os.system"}))
    with pytest.raises(QismError, match=f"TfidfFeaturizer has no parameter '{parameter}'"):
        load_model(model_dir)


MALFORMED_SPECS = {
    "not JSON": "{'format': qism",
    "a list": "[]",
    "a pipeline that is a list": '{"format": "qism-model", "format_version": 1, "pipeline": []}',
    "steps that are not pairs": '{"format": "qism-model", "format_version": 1, "pipeline": {"class": "Pipeline", "steps": [1]}}',
    "nested too deeply": "[" * 100_000 + "]" * 100_000,
    "versions that are a string": '{"format": "qism-model", "format_version": 2, "versions": "x"}',
}


@pytest.mark.parametrize("malformed", MALFORMED_SPECS)
def test_malformed_pipeline_json_is_refused(model_dir, malformed):
    (model_dir / PIPELINE_FILE).write_text(MALFORMED_SPECS[malformed], encoding="utf-8")
    reseal(model_dir)
    with pytest.raises(QismError, match=str(model_dir)):
        load_model(model_dir)


# --- damaged or altered files are caught by the card's checksums -------------------------------

def test_truncated_or_modified_files_are_refused_before_use(model_dir):
    arrays = model_dir / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes()[:-100])
    with pytest.raises(QismError, match=f"{ARRAYS_FILE}: checksum does not match the card"):
        load_model(model_dir)
    reseal(model_dir)  # resealed, a truncated archive is still refused, in one line
    with pytest.raises(QismError, match="cannot read the model"):
        load_model(model_dir)


def test_card_without_checksums_is_refused(model_dir):
    card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    del card["files"]
    (model_dir / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(QismError, match="the card lists no checksums"):
        load_model(model_dir)


def test_arrays_that_do_not_fit_together_are_refused_at_load(model_dir):
    with np.load(model_dir / ARRAYS_FILE) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    contents["classifier.coef_"] = contents["classifier.coef_"][:, :5]
    np.savez_compressed(model_dir / ARRAYS_FILE, **contents)
    reseal(model_dir)
    with pytest.raises(QismError, match="cannot read the model"):
        load_model(model_dir)


# --- models from other versions ---------------------------------------------------------------

def saved_by(spec: dict, qism: str = "0.0.1", sklearn_version: str = "0.24.2") -> None:
    spec["versions"].update({"qism": qism, "scikit-learn": sklearn_version})


def test_model_from_other_versions_loads_when_its_arrays_still_work(model_dir, tiny_model_dir):
    edit_spec(model_dir, saved_by)
    texts = [SPORTS, "ارتفعت أسعار الأسهم"]
    np.testing.assert_array_equal(load_model(model_dir).predict_proba(texts), load_model(tiny_model_dir).predict_proba(texts))


def test_model_from_other_versions_that_does_not_work_names_both_versions(model_dir):
    def renamed_parameter(spec):  # as if an older scikit-learn called the parameter otherwise
        saved_by(spec)
        params = step(spec, "classifier")["params"]
        params["penalty_C"] = params.pop("C")

    edit_spec(model_dir, renamed_parameter)
    with pytest.raises(QismError) as caught:
        load_model(model_dir)
    message = str(caught.value)
    for part in ("saved by qism 0.0.1 with scikit-learn 0.24.2", f"qism {qism_version()} and scikit-learn {sklearn.__version__}",
                 "'penalty_C'", "retrain it"):
        assert part in message


def test_newer_model_format_names_both_qism_versions(model_dir):
    edit_spec(model_dir, lambda spec: spec.update({"format_version": 99, "versions": {"qism": "9.0"}}))
    with pytest.raises(QismError, match=rf"model format 99 \(saved by qism 9.0\) cannot be read by qism {qism_version()}"):
        load_model(model_dir)


# --- saving never loses the previous model ----------------------------------------------------

def model_files(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def test_full_disk_while_saving_keeps_the_previous_model(tmp_path, model_dir, monkeypatch):
    before = load_model(model_dir).predict_proba([SPORTS])
    new = train([FIXTURES / "tiny"], TrainConfig(test_size=0, min_df=1, C=5.0))

    def disk_full(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_module.np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space left"):
        new.save(model_dir)
    np.testing.assert_array_equal(load_model(model_dir).predict_proba([SPORTS]), before)
    assert model_files(tmp_path) == ["model"]  # no temporary folders left


def test_failed_final_rename_restores_the_previous_model(tmp_path, model_dir, monkeypatch):
    new = train([FIXTURES / "tiny"], TrainConfig(test_size=0, min_df=1, C=5.0))
    real_replace = os.replace

    def replace(source, target):
        if Path(target) == model_dir and ".model." in Path(source).name:  # the new model moving in
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(model_module.os, "replace", replace)
    with pytest.raises(OSError):
        new.save(model_dir)
    assert load_model(model_dir).card["config"]["C"] == 1.0
    assert model_files(tmp_path) == ["model"]


@pytest.mark.parametrize("interruption", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_qism_train_leaves_the_previous_model(tmp_path, model_dir, monkeypatch, interruption):
    def fail(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(model_module.np, "savez_compressed", fail)
    result = run("train", FIXTURES / "tiny", "--out", model_dir, "--test-size", "0", "--min-df", "1", "--C", "5")
    if isinstance(interruption, OSError):
        assert_user_error(result, "No space left on device; nothing was written")
    else:
        assert result.exit_code == 130 and "interrupted" in result.stderr
    assert load_model(model_dir).card["config"]["C"] == 1.0
    assert model_files(tmp_path) == ["model"]
