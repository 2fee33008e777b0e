"""The fast paths of labeling write what the plain ones wrote: JSON records byte for byte as
`json.dumps`, and one article from the shell without the worker pool."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from qism.output import _encode_record

#: What a record can hold: text (any character, controls and separators included), numbers, None,
#: and lists and dicts of them, as records and kept input columns have.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6))
def test_records_are_encoded_as_json_dumps_encodes_them(record):
    assert _encode_record(record) == json.dumps(record, ensure_ascii=False)


def test_a_handful_of_articles_starts_no_worker_pool(monkeypatch):
    from conftest import ECONOMY, SPORTS, run
    from qism.features import pool

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for two articles")

    monkeypatch.setattr(pool, "map_ranges", no_pool)
    result = run("predict", "--jobs", "2", SPORTS, ECONOMY)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3  # the header and one row per article
