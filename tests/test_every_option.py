"""Every option of `TrainConfig`, trained in memory and streaming (one shard): the same model, array for
array, where the two paths run the same algorithm, and the same effect where they do not. The cases
are keyed by `TrainConfig`'s own fields, so an option added without a case fails here."""

from dataclasses import fields

import numpy as np
import pytest
from conftest import model_arrays
from qism import QismError, ReadOptions, TrainConfig, train

#: The base of every case: what it changes is then the only difference from the defaults that matter here.
BASE = {"min_df": 1, "test_size": 0.25}
#: One case (or several) per option: the options it sets, beyond `BASE`.
CASES = {
    "classifier": [{"classifier": "linear_svc"}, {"classifier": "logreg"}, {"classifier": "complement_nb"}],
    "C": [{"C": 0.2}],
    "class_weight": [{"class_weight": None}],
    "nb_scaling": [{"nb_scaling": 0.0}, {"nb_scaling": 0.0, "classifier": "linear_svc"}],
    "word_ngrams": [{"word_ngrams": (1, 1)}],
    "char_ngrams": [{"char_ngrams": (2, 3)}],
    "min_df": [{"min_df": 3}],
    "max_df": [{"max_df": 0.5}],
    "max_features": [{"max_features": 300}],
    "n_buckets": [{"n_buckets": 2**12}],
    "sublinear_tf": [{"sublinear_tf": False}],
    "cleaning": [{"cleaning": {"alef": False}}],
    "boilerplate_min_docs": [{"boilerplate_min_docs": 0}],
    "lead_words": [{"lead_words": 0}],
    "balance_outlets": [{"balance_outlets": True}],
    "outlet_label_sets": [{"outlet_label_sets": True, "classifier": "linear_svc"}, {"outlet_label_sets": True}],
    "label_set_labels": [{"label_set_labels": ("security",), "classifier": "linear_svc"}],
    "label_set_weight": [{"label_set_labels": ("security",), "label_set_weight": 0.3, "classifier": "linear_svc"}],
    "calibration_size": [{"calibration_size": 0.5}],
    "class_scaling": [{"class_scaling": True, "calibration_size": 0.5}],
    "test_size": [{"test_size": 0.0}],
    "seed": [{"seed": 7}],
    "dedupe": [{"dedupe": False}],
    # `titles` is the read option (not a TrainConfig field) that gives title_weight documents to weigh
    "title_weight": [{"title_weight": 0.3, "titles": "also"}],
    "multi_label": [{"multi_label": True}],
}
#: Options under which streaming runs another algorithm than the in-memory fit: the calibration share is
#: held out as its own shard, whose model then joins an average with the other shard's (so the weights
#: move too, where in memory only the temperature and the per-label corrections do).
ANOTHER_ALGORITHM = {"calibration_size", "class_scaling"}
#: Learners streaming refuses, in one line.
NOT_STREAMED = {"complement_nb"}
#: Options streaming refuses, in one line (multi-label training runs in memory only).
IN_MEMORY_ONLY = {"multi_label": "multi-label training runs in memory"}
#: Models trained so far in this module, by path and options: cases share their references.
TRAINED = {}


def _trained(corpus, options: dict, streaming: bool) -> dict[str, np.ndarray]:
    key = (streaming, repr(sorted(options.items())))
    if key not in TRAINED:
        options = dict(options)
        read = ReadOptions(titles=options.pop("titles", "no"))
        model = train([corpus], TrainConfig(**{**BASE, **options}), read_options=read, n_jobs=1, streaming=streaming)
        assert model.card["training"]["path"] == ("streaming" if streaming else "in-memory")
        TRAINED[key] = model_arrays(model)
    return TRAINED[key]


def _moved(arrays: dict, reference: dict) -> list[str]:
    """The arrays that differ from the reference's."""
    return [name for name, values in arrays.items() if not np.array_equal(values, reference[name])]


def test_every_option_of_train_config_has_a_case():
    assert set(CASES) == {f.name for f in fields(TrainConfig)}
    for option, cases in CASES.items():
        assert all(option in case for case in cases), option


@pytest.mark.parametrize("option", [f.name for f in fields(TrainConfig)])
def test_every_option_trains_the_same_model_in_memory_and_streaming(option, two_outlets):
    """Against the same case without the option, the option changes the same arrays in both paths (the
    label-set options change the weights in both); where the algorithm is the same, the models are equal."""
    for case in CASES[option]:
        if option in IN_MEMORY_ONLY:
            assert _trained(two_outlets, case, streaming=False)["coef"].size  # in memory it trains
            with pytest.raises(QismError, match=IN_MEMORY_ONLY[option]):
                _trained(two_outlets, case, streaming=True)
            continue
        if case.get("classifier") in NOT_STREAMED:
            assert _trained(two_outlets, case, streaming=False)["coef"].size  # in memory it trains
            with pytest.raises(QismError, match="fits linear learners"):
                _trained(two_outlets, case, streaming=True)
            continue
        without = {key: value for key, value in case.items() if key != option}
        in_memory, streamed = _trained(two_outlets, case, False), _trained(two_outlets, case, True)
        moved = _moved(in_memory, _trained(two_outlets, without, False))
        moved_streaming = _moved(streamed, _trained(two_outlets, without, True))
        assert moved and set(moved) <= set(moved_streaming), case  # it does in streaming what it does in memory
        if option not in ANOTHER_ALGORITHM:
            for name, values in in_memory.items():
                np.testing.assert_array_equal(streamed[name], values, err_msg=f"{case}: {name}")
