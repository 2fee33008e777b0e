"""Model folders passed around by colleagues: loading never runs code from them, a damaged or
altered one is refused before use, one from other versions loads or names both versions, and a
failed save leaves the previous model as it was.

Each crafted model is resealed (its checksums in card.json recomputed), as an attacker would, so the
refusal shown is the loader's, not the checksum's.
"""

import hashlib
import io
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sklearn
from conftest import FIXTURES, SPORTS, assert_user_error, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qism import QismError, TrainConfig, load_model, train
from qism import model as model_module
from qism.card import qism_version
from qism.model import ARRAYS_FILE, CARD_FILE, PIPELINE_FILE, card_checksum


@pytest.fixture
def model_dir(tmp_path, tiny_model_dir) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def marker(tmp_path) -> Path:
    """The file a payload creates when it runs."""
    return tmp_path / "payload-ran"


def reseal(directory: Path, card: dict | None = None) -> None:
    """Make the card's checksums match the (tampered) files and the (tampered) card itself: anyone
    can, so a checksum is integrity, not a signature."""
    card = card if card is not None else json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
    card["files"] = {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in (PIPELINE_FILE, ARRAYS_FILE)
    }
    card["card_sha256"] = card_checksum(card)
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
    with pytest.raises(QismError, match="holds Python objects"):
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
    with pytest.raises(QismError, match="is not a NumPy archive"):
        load_model(model_dir)
    assert not marker.exists()


def test_pickle_files_beside_the_model_are_never_opened(model_dir, marker):
    for name in ("pipeline.pkl", "model.joblib", "__init__.py"):
        (model_dir / name).write_bytes(pickle.dumps(Payload(marker)))
    assert load_model(model_dir).predict([SPORTS]) == ["sports"]
    assert not marker.exists()


@pytest.mark.parametrize(
    "cls",
    [
        "os.system",
        "subprocess.Popen",
        "builtins.exec",
        "builtins.eval",
        "sklearn.preprocessing.FunctionTransformer",
        "qism.model.load_model",
        "Model",
    ],
)
@pytest.mark.parametrize("where", ["pipeline", "features", "cleaner"])
def test_classes_outside_the_whitelist_are_refused(model_dir, marker, cls, where):
    payload = {
        "class": cls,
        "params": {
            "command": f"touch {marker}",
            "args": ["touch", str(marker)],
            "func": "os.system",
            "source": f"open({str(marker)!r}, 'w')",
        },
    }

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


@pytest.mark.parametrize(
    "attribute", ["__class__", "__dict__", "__reduce__", "_lookup", "_compiled_key", "predict", "fit"]
)
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
    "steps that are not pairs": (
        '{"format": "qism-model", "format_version": 1, "pipeline": {"class": "Pipeline", "steps": [1]}}'
    ),
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


# --- every value a model file holds is bounded before it is used --------------------------------


def edit_arrays(directory: Path, change) -> None:
    """Change the arrays (a dict of name -> array) and write them back as qism does, then reseal."""
    with np.load(directory / ARRAYS_FILE) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    change(contents)
    np.savez_compressed(directory / ARRAYS_FILE, **contents)
    reseal(directory)


def edit_card(directory: Path, change) -> None:
    card = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
    change(card)
    reseal(directory, card)


def set_param(where: str, key: str, value):
    def change(spec):
        estimator = step(spec, "features")["params"]["cleaner"] if where == "cleaner" else step(spec, where)
        estimator["params"][key] = value

    return change


PARAMETER_EDITS = {  # (step, parameter, value, what the message names)
    "word_ngrams up to 10^9": ("features", "word_ngrams", [1, 10**9], "--word-ngrams"),
    "char_ngrams up to 10^6": ("features", "char_ngrams", [1, 10**6], "--char-ngrams"),
    "lead_words 10^9": ("features", "lead_words", 10**9, "--lead-words"),
    "n_buckets 2^40": ("features", "n_buckets", 2**40, "n_buckets"),
    "n_buckets 3": ("features", "n_buckets", 3, "n_buckets"),
    "min_df -1": ("features", "min_df", -1, "--min-df"),
    "max_df 7": ("features", "max_df", 7, "max_df"),
    "max_features 0": ("features", "max_features", 0, "--max-features"),
    "sublinear_tf 'yes'": ("features", "sublinear_tf", "yes", "sublinear-tf"),
    "dtype 'object'": ("features", "dtype", "object", "dtype"),
    "cleaner 'os.system'": ("features", "cleaner", "os.system", "cleaner"),
    "a cleaning switch 'no'": ("cleaner", "diacritics", "no", "cleaning.diacritics"),
    "kind 'pickle'": ("classifier", "kind", "pickle", "--classifier"),
    "C NaN": ("classifier", "C", float("nan"), "--C"),
    "C -1": ("classifier", "C", -1, "--C"),
    "class_weight 'heavy'": ("classifier", "class_weight", "heavy", "--class-weight"),
    "calibration_size 3": ("classifier", "calibration_size", 3, "calibration_size"),
    "random_state -1": ("classifier", "random_state", -1, "--seed"),
}


def test_a_model_file_never_decides_how_many_processes_run(model_dir, tiny):
    edit_spec(
        model_dir,
        lambda spec: (set_param("features", "n_jobs", 1000)(spec), set_param("classifier", "n_jobs", 1000)(spec)),
    )
    model = load_model(model_dir)
    assert (
        model.pipeline.get_params()["features__n_jobs"] is None
        and model.pipeline.get_params()["classifier__n_jobs"] is None
    )
    train([tiny], TrainConfig(test_size=0, min_df=1), n_jobs=2).save(model_dir)  # nor does the --jobs of a training
    assert (
        '"n_jobs": -1' not in (model_dir / PIPELINE_FILE).read_text()
        and '"n_jobs": 2' not in (model_dir / PIPELINE_FILE).read_text()
    )


def set_fitted(where: str, key: str, value):
    return lambda spec: step(spec, where)["fitted"].update({key: value})


FITTED_EDITS = {  # (step, attribute, value, message)
    "temperature 0": ("classifier", "temperature_", 0, "temperature_"),
    "temperature -1": ("classifier", "temperature_", -1, "temperature_"),
    "temperature NaN": ("classifier", "temperature_", float("nan"), "temperature_"),
    "temperature 1e-300": ("classifier", "temperature_", 1e-300, "temperature_"),
    "temperature 'hot'": ("classifier", "temperature_", "hot", "temperature_"),
    "temperature an array": ("classifier", "temperature_", {"array": "classifier.coef_"}, "temperature_"),
    "n_features_out_ 7": ("features", "n_features_out_", 7, "n_features_out_"),
    "an attribute qism does not save": ("features", "vocabulary_", {"a": 1}, "vocabulary_"),
    "coef_ not an array": ("classifier", "coef_", [[1.0]], "coef_"),
}


SPEC_EDITS = {
    **{edit: (set_param(*change[:3]), change[3]) for edit, change in PARAMETER_EDITS.items()},
    **{edit: (set_fitted(*change[:3]), change[3]) for edit, change in FITTED_EDITS.items()},
}


def with_value(name: str, index, value):
    def change(contents):
        array = contents[name].copy()
        array[index] = value
        contents[name] = array

    return change


def replaced(name: str, make):
    return lambda contents: contents.update({name: make(contents[name])})


ARRAY_EDITS = {  # (change of the arrays, message)
    "a NaN weight (scores NaN)": (with_value("classifier.coef_", (0, 0), np.nan), "coef_"),
    "an infinite bias": (with_value("classifier.intercept_", 0, np.inf), "intercept_"),
    "a weight of 1e30 (overflows to NaN)": (with_value("classifier.coef_", (1, 0), 1e30), "coef_"),
    "a NaN idf": (with_value("features.idf_", 0, np.nan), "idf_"),
    "a negative idf": (with_value("features.idf_", 0, -1.0), "idf_"),
    "weights as integers": (replaced("classifier.coef_", lambda a: a.astype(np.int8)), "coef_"),
    "weights of three dimensions": (replaced("classifier.coef_", lambda a: a[None]), "coef_"),
    "biases of the wrong length": (replaced("classifier.intercept_", lambda a: a[:-1]), "intercept_"),
    "idf of the wrong length": (replaced("features.idf_", lambda a: a[:-1]), "idf_"),
    "columns unsorted": (replaced("features.columns_", lambda a: a[::-1].copy()), "columns_"),
    "a column twice": (with_value("features.columns_", 1, 0), "columns_"),
    "a negative column": (with_value("features.columns_", 0, -5), "columns_"),
    "a column beyond n_buckets": (with_value("features.columns_", -1, 2**30), "columns_"),
    "columns as floats": (replaced("features.columns_", lambda a: a.astype(np.float64)), "columns_"),
    "a label twice": (with_value("classifier.classes_", 1, "sports"), "classes_"),
    "labels in a table": (replaced("classifier.classes_", lambda a: a[None]), "classes_"),
    "boilerplate as floats": (replaced("features.boilerplate_", lambda a: a.astype(np.float64)), "boilerplate_"),
    "a missing array": (lambda contents: contents.pop("classifier.coef_"), "classifier.coef_"),
    "an array no step uses": (lambda contents: contents.update({"spare": np.zeros(10)}), "spare"),
}


def npy_member(shape, descr="<f8", data=b"\x00" * 64) -> bytes:
    """A .npy member whose header declares `shape` and which holds only `data`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def add_members(directory: Path, members: dict[str, bytes], replace: bool = False) -> None:
    path = directory / ARRAYS_FILE
    with zipfile.ZipFile(path) as archive:
        kept = {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if not (replace and info.filename in members)
        }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in kept.items():
            archive.writestr(name, data)
        for name, data in members.items():
            archive.writestr(name, data)
    reseal(directory)


@pytest.mark.parametrize(
    "case",
    [
        "an unused member declaring 80 GB",
        "a used member declaring 80 GB",
        "a used member of 40 MB that does not fit",
        "a member twice",
        "pickled objects declared in the header",
    ],
)
def test_array_sizes_are_checked_before_anything_is_read(model_dir, case, monkeypatch):
    huge = npy_member((10**10,))
    if case == "an unused member declaring 80 GB":
        add_members(model_dir, {"unused.npy": huge})
        named = "unused"
    elif case == "a used member declaring 80 GB":
        add_members(model_dir, {"features.idf_.npy": huge}, replace=True)
        named = "features.idf_"
    elif case == "a used member of 40 MB that does not fit":
        add_members(model_dir, {"features.idf_.npy": npy_member((10**7,), "<f4", bytes(4 * 10**7))}, replace=True)
        named = r"idf_ is an array of float32 shaped \(10000000,\)"
    elif case == "a member twice":
        with pytest.warns(UserWarning, match="Duplicate name"):
            add_members(model_dir, {"features.idf_.npy": npy_member((3,), "<f4", b"\x00" * 12)})
        named = "twice"
    else:
        add_members(model_dir, {"classifier.classes_.npy": npy_member((3,), "|O")}, replace=True)
        named = "Python objects"
    read = []
    monkeypatch.setattr(model_module, "_read_declared", lambda archive, declared: read.append(declared))
    with pytest.raises(QismError, match=f"{model_dir}: .*{named}"):
        load_model(model_dir)
    assert read == []  # refused from the headers alone


CARD_EDITS = {  # (change of the card, message)
    "label_names naming a label the model lacks": (
        lambda c: c.update(label_names={"sports": "رياضة", "weather": "طقس"}),
        "label_names",
    ),
    "label_names that are numbers": (lambda c: c.update(label_names={"sports": 7}), "label_names"),
    "two labels with one name (a label twice)": (
        lambda c: c.update(label_names={"sports": "x", "economy": "x"}),
        "label_names",
    ),
    "labels that are a list": (lambda c: c.update(labels=["sports"]), "labels"),
    "config that is a string": (lambda c: c.update(config="sgd"), "card.json"),
    "scores that are a string": (lambda c: c.update(scores="great"), "card.json"),
    "sources without paths": (lambda c: c.update(sources=[{"documents": "many"}]), "card.json"),
}


#: Every edit above: (how the file is written back and resealed, the change, what the message names).
VALUE_EDITS = {
    **{edit: (edit_spec, *SPEC_EDITS[edit]) for edit in SPEC_EDITS},
    **{edit: (edit_arrays, *ARRAY_EDITS[edit]) for edit in ARRAY_EDITS},
    **{edit: (edit_card, *CARD_EDITS[edit]) for edit in CARD_EDITS},
}


@pytest.mark.parametrize("edit", VALUE_EDITS)
def test_values_out_of_bounds_are_refused_at_load(model_dir, edit):
    write_back, change, named = VALUE_EDITS[edit]
    write_back(model_dir, change)
    with pytest.raises(QismError, match=f"{model_dir}: .*{named}"):
        load_model(model_dir)


def test_the_whole_card_is_under_its_checksum(model_dir):
    card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    card["label_names"] = {"sports": "طقس"}  # files untouched, their checksums still right
    (model_dir / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(QismError, match="card.json: checksum does not match"):
        load_model(model_dir)
    del card["card_sha256"]
    (model_dir / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(QismError, match="cannot be verified"):
        load_model(model_dir)


def test_model_saved_before_the_card_checksum_still_loads(model_dir, tiny_model_dir):
    card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    for key in ("format", "card_sha256"):
        del card[key]
    (model_dir / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    assert load_model(model_dir).predict([SPORTS]) == load_model(tiny_model_dir).predict([SPORTS])


def test_a_card_label_map_that_is_not_one_is_one_line_in_evaluate(model_dir, tiny):
    edit_card(model_dir, lambda card: card.update(label_map={"labels": 3}))
    assert_user_error(run("evaluate", model_dir, tiny), "the model's label map: expected [labels.<id>] tables")


@pytest.mark.parametrize("name", [CARD_FILE, PIPELINE_FILE])
def test_oversized_json_files_are_refused_before_reading(model_dir, name, monkeypatch):
    monkeypatch.setattr(model_module, "MAX_JSON_BYTES", 100_000)
    with open(model_dir / name, "a", encoding="utf-8") as handle:
        handle.write(" " * 200_000)  # still the same JSON
    if name == PIPELINE_FILE:
        reseal(model_dir)
    with pytest.raises(QismError, match=rf"{name}: 20\d,\d+ bytes, larger than"):
        load_model(model_dir)


def json_paths(value, path=()):
    """Every place in a JSON document: (keys and indices from the top)."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_paths(item, path + (i,))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([10**9, -1, 0, 2**63, "sports", "Pipeline", "os.system"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_a_resealed_card_or_pipeline_is_refused_or_works_never_a_traceback(tiny_model_dir, tmp_path, data):
    directory = Path(tempfile.mkdtemp(dir=tmp_path)) / "model"
    shutil.copytree(tiny_model_dir, directory)
    name = data.draw(st.sampled_from([CARD_FILE, PIPELINE_FILE]), label="file")
    document = json.loads((directory / name).read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(list(json_paths(document))), label="where")
        new = data.draw(JSON_VALUES | st.just(DELETE), label="value")
        document = edited(document, path, new)
    if name == PIPELINE_FILE:
        (directory / PIPELINE_FILE).write_text(json.dumps(document), encoding="utf-8")
        reseal(directory)
    elif isinstance(document, dict):
        reseal(directory, document)
    else:
        (directory / CARD_FILE).write_text(json.dumps(document), encoding="utf-8")
    for args in (
        ["info", directory],
        ["predict", "--model", directory, "-k", "3", SPORTS],
        ["evaluate", directory, FIXTURES / "tiny"],
    ):
        result = run(*args)
        assert result.exit_code in (0, 1) and (result.exception is None or isinstance(result.exception, SystemExit)), (
            args,
            result.exception,
        )
        assert "Traceback" not in result.output


DELETE = object()


def edited(document, path, new):
    """`document` with the value at `path` replaced by `new` (or removed: DELETE)."""
    if not path:
        return {} if new is DELETE else new
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


# --- models from other versions ---------------------------------------------------------------


def saved_by(spec: dict, qism: str = "0.0.1", sklearn_version: str = "0.24.2") -> None:
    spec["versions"].update({"qism": qism, "scikit-learn": sklearn_version})


def test_model_from_other_versions_loads_when_its_arrays_still_work(model_dir, tiny_model_dir):
    edit_spec(model_dir, saved_by)
    texts = [SPORTS, "ارتفعت أسعار الأسهم"]
    np.testing.assert_array_equal(
        load_model(model_dir).predict_proba(texts), load_model(tiny_model_dir).predict_proba(texts)
    )


def test_model_from_other_versions_that_does_not_work_names_both_versions(model_dir):
    def renamed_parameter(spec):  # as if an older scikit-learn called the parameter otherwise
        saved_by(spec)
        params = step(spec, "classifier")["params"]
        params["penalty_C"] = params.pop("C")

    edit_spec(model_dir, renamed_parameter)
    with pytest.raises(QismError) as caught:
        load_model(model_dir)
    message = str(caught.value)
    for part in (
        "saved by qism 0.0.1 with scikit-learn 0.24.2",
        f"qism {qism_version()} and scikit-learn {sklearn.__version__}",
        "'penalty_C'",
        "retrain it",
    ):
        assert part in message


def test_newer_model_format_names_both_qism_versions(model_dir):
    edit_spec(model_dir, lambda spec: spec.update({"format_version": 99, "versions": {"qism": "9.0"}}))
    with pytest.raises(
        QismError, match=rf"model format 99 \(saved by qism 9.0\) cannot be read by qism {qism_version()}"
    ):
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


def test_rewriting_a_model_keeps_the_modes_of_its_folder_and_files(model_dir, tiny):
    modes = {CARD_FILE: 0o600, PIPELINE_FILE: 0o640, ARRAYS_FILE: 0o600, "card.md": 0o644}
    for name, mode in modes.items():
        os.chmod(model_dir / name, mode)
    os.chmod(model_dir, 0o700)
    train([tiny], TrainConfig(test_size=0, min_df=1, C=5.0)).save(model_dir)
    assert load_model(model_dir).card["config"]["C"] == 5.0
    assert {name: (model_dir / name).stat().st_mode & 0o777 for name in modes} == modes
    assert model_dir.stat().st_mode & 0o777 == 0o700


# --- staging folders of killed saves are cleaned, never one still being written --------------


def age(path: Path, seconds: float) -> None:
    """Make a folder and its files look `seconds` old."""
    then = time.time() - seconds
    for each in [path, *path.rglob("*")]:
        os.utime(each, (then, then), follow_symlinks=False)


def leftovers(tmp_path: Path, tiny_model_dir: Path) -> dict[str, Path]:
    """Folders beside `model` as killed saves leave them, and others that look alike but are not qism's."""

    def copy(name, extra=None):
        folder = Path(shutil.copytree(tiny_model_dir, tmp_path / name))
        if extra:
            (folder / extra).write_text("mine")
        return folder

    old = tmp_path / ".model.k1ll3d_0.old"
    old.mkdir()
    shutil.copytree(tiny_model_dir, old / "model")
    found = {
        "killed staging": copy(".model.k1ll3d_1.staging"),
        "half-written staging": tmp_path / ".model.k1ll3d_2.staging",
        "retired model": old,
        "staging with a user file": copy(".model.k1ll3d_3.staging", "notes.txt"),
        "another name": copy(".model.notmine.staging"),
        "another model's staging": copy(".other.k1ll3d_4.staging"),
        "fresh staging": copy(".model.fr3sh_00.staging"),
    }
    found["half-written staging"].mkdir()
    (found["half-written staging"] / PIPELINE_FILE).write_text("{")
    for name, folder in found.items():
        age(folder, 0 if name == "fresh staging" else 3600)
    return found


def test_stale_staging_of_killed_saves_is_cleaned_on_the_next_save(tmp_path, model_dir, tiny_model_dir):
    found = leftovers(tmp_path, tiny_model_dir)
    train([FIXTURES / "tiny"], TrainConfig(test_size=0, min_df=1, C=5.0)).save(model_dir)
    gone = {name for name, folder in found.items() if not folder.exists()}
    assert gone == {"killed staging", "half-written staging", "retired model"}
    assert (found["staging with a user file"] / "notes.txt").read_text() == "mine"
    assert load_model(model_dir).card["config"]["C"] == 5.0


def _save_slowly(directory: str, started) -> None:
    """A save that stops half-way through writing its arrays (until it is killed)."""

    def stall(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        handle.flush()
        started.set()
        time.sleep(120)

    model_module.np.savez_compressed = stall
    load_model(directory).save(directory)


def test_staging_that_a_running_save_is_writing_is_never_cleaned(tmp_path, model_dir):
    context = multiprocessing.get_context("fork")
    started = context.Event()
    slow = context.Process(target=_save_slowly, args=(str(model_dir), started))
    slow.start()
    try:
        assert started.wait(60)
        [staging] = tmp_path.glob(".model.*.staging")
        age(staging, 3600)  # old, yet being written
        load_model(model_dir).save(model_dir)
        assert staging.exists()
    finally:
        os.kill(slow.pid, signal.SIGKILL)
        slow.join()
    load_model(model_dir).save(model_dir)  # its writer is gone: now it is stale
    assert not staging.exists() and model_files(tmp_path) == ["model"]


def _save_repeatedly(directory: str, seed: int, times: int) -> None:
    model = train([FIXTURES / "tiny"], TrainConfig(test_size=0, min_df=1, C=float(seed)))
    for _ in range(times):
        model.save(directory)


def test_parallel_saves_to_one_folder_all_succeed_and_leave_one_whole_model(tmp_path, model_dir):
    context = multiprocessing.get_context("fork")
    savers = [context.Process(target=_save_repeatedly, args=(str(model_dir), seed, 5)) for seed in (1, 2, 3)]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join(120)
    assert [saver.exitcode for saver in savers] == [0, 0, 0]
    assert load_model(model_dir).card["config"]["C"] in (1.0, 2.0, 3.0)
    assert model_files(tmp_path) == ["model"]


def test_a_loaded_model_saves_to_the_same_files(tmp_path, tiny_model_dir):
    load_model(tiny_model_dir).save(tmp_path / "again")
    for name in (PIPELINE_FILE, ARRAYS_FILE):
        assert (tmp_path / "again" / name).read_bytes() == (tiny_model_dir / name).read_bytes()
