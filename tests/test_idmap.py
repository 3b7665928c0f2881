"""IdMap: contiguous indices over sorted raw IDs, vectorised both ways, typed unknown-ID errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.idmap import IdMap
from movierec.errors import MovierecError, UnknownIdError, UnknownItemError, UnknownUserError


def test_from_values_is_contiguous_and_sorted():
    idmap, codes = IdMap.from_values(np.array([30, 10, 20, 10, 30]), kind="user", error=UnknownUserError)
    assert list(idmap.raw_ids) == [10, 20, 30] and len(idmap) == 3
    assert codes.dtype == np.int32 and codes.tolist() == [2, 0, 1, 0, 2]
    assert idmap.raw(codes).tolist() == [30, 10, 20, 10, 30]


def test_constructor_sorts_and_dedups():
    idmap = IdMap([5, 3, 5, 1])
    assert idmap.to_list() == [1, 3, 5]
    assert idmap == IdMap([1, 3, 5]) and idmap != IdMap([1, 3])
    with pytest.raises(ValueError):
        IdMap(np.zeros((2, 2)))


def test_lookup_vectorised_both_ways():
    idmap = IdMap(np.arange(100, 200, 7))
    raw = np.array([100, 198, 107, 100])
    idx = idmap.lookup(raw)
    assert idx.dtype == np.int64 and idx.tolist() == [0, 14, 1, 0]
    assert idmap.raw(idx).tolist() == raw.tolist()
    assert idmap.lookup(107).tolist() == [1]  # scalars too
    assert idmap.index_of(198) == 14
    assert 107 in idmap and 108 not in idmap


def test_unknown_ids_raise_typed_errors():
    users = IdMap([1, 2, 3], kind="user", error=UnknownUserError)
    items = IdMap([10, 20], kind="movie", error=UnknownItemError)
    with pytest.raises(UnknownUserError, match="Unknown user ID: 99"):
        users.lookup([1, 99])
    with pytest.raises(UnknownItemError, match="Unknown movie IDs: 5, 6"):
        items.lookup([5, 6, 10])
    with pytest.raises(UnknownUserError):
        users.index_of(0)
    # the errors are MovierecErrors (clean CLI message) and KeyErrors (mapping semantics)
    assert issubclass(UnknownUserError, MovierecError) and issubclass(UnknownItemError, KeyError)
    with pytest.raises(UnknownIdError) as info:
        users.lookup([42])
    assert str(info.value) == "Unknown user ID: 42."  # not KeyError's quoted repr


def test_many_unknown_ids_are_abbreviated():
    with pytest.raises(UnknownIdError, match=r"1, 2, 3, 4, 5 \.\.\.\.$"):
        IdMap([0]).lookup(np.arange(1, 20))


def test_mask_mode():
    idmap = IdMap([1, 2, 3])
    assert idmap.lookup([3, 99, 1], missing="mask").tolist() == [2, -1, 0]


def test_string_ids_and_cross_type_lookup():
    strings = IdMap(np.array(["b", "a", "c"], dtype=object), kind="user", error=UnknownUserError)
    assert strings.to_list() == ["a", "b", "c"]
    assert strings.lookup(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(UnknownUserError):
        strings.lookup(["zz"])
    numeric_strings = IdMap(np.array(["1", "2"], dtype=object))
    assert numeric_strings.lookup([2]).tolist() == [1]  # int asked of a string map
    ints = IdMap([1, 2])
    assert ints.lookup(np.array(["2", "1"], dtype=object)).tolist() == [1, 0]  # strings asked of an int map
    assert ints.lookup(["x"], missing="mask").tolist() == [-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=60))
def test_roundtrip_property(values):
    idmap, codes = IdMap.from_values(np.array(values, dtype=np.int64))
    raw = idmap.raw_ids
    assert len(idmap) == len(set(values))
    assert np.all(np.diff(raw) > 0)  # sorted, unique
    assert codes.min() == 0 and codes.max() == len(idmap) - 1  # contiguous
    assert idmap.raw(codes).tolist() == values
    assert idmap.lookup(values).tolist() == codes.tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=30))
def test_string_roundtrip_property(values):
    idmap, codes = IdMap.from_values(np.array(values, dtype=object))
    assert idmap.to_list() == sorted(set(values))
    assert idmap.raw(codes).tolist() == values
    assert idmap.lookup(np.array(values, dtype=object)).tolist() == codes.tolist()


def test_dataset_maps(ml100k):
    assert ml100k.users.raw_ids.tolist() == list(range(1, 944))
    assert ml100k.items.raw_ids.tolist() == list(range(1, 1683))
    with pytest.raises(UnknownUserError):
        ml100k.users.lookup([944])
    with pytest.raises(UnknownItemError):
        ml100k.items.lookup([0, 1683])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 3000), min_size=1, max_size=200), st.sampled_from([np.int64, np.int32]))
def test_from_values_matches_sorted_factorize(values, dtype):
    """Small dense integer ranges (the MovieLens case) agree with a sorted factorisation."""
    import pandas as pd

    arr = np.array(values, dtype=dtype)
    idmap, codes = IdMap.from_values(arr)
    ref_codes, ref_uniques = pd.factorize(arr, sort=True)
    assert codes.dtype == np.int32 and codes.tolist() == ref_codes.tolist()
    assert idmap.raw_ids.tolist() == ref_uniques.tolist()
    assert idmap.raw_ids.dtype == ref_uniques.dtype == dtype  # raw IDs keep their integer type
    assert idmap.lookup(arr).tolist() == codes.tolist()


def test_default_kind_and_error():
    """Without kind/error a map names "id" and raises the generic UnknownIdError."""
    for idmap in (IdMap([1, 2]), IdMap.from_values(np.array([1, 2]))[0], IdMap.from_values(np.array(["a"]))[0]):
        with pytest.raises(UnknownIdError) as info:
            idmap.lookup([7])
        assert type(info.value) is UnknownIdError and str(info.value) == "Unknown id ID: 7."
    with pytest.raises(UnknownUserError, match="Unknown user ID"):
        IdMap.from_values(np.array([1]), kind="user", error=UnknownUserError)[0].lookup([3])


def test_rejects_two_dimensional_ids():
    with pytest.raises(ValueError, match=r"^raw_ids must be one-dimensional$"):
        IdMap(np.zeros((2, 2)))


def test_unknown_ids_listed_up_to_five():
    idmap = IdMap([0])
    with pytest.raises(UnknownIdError) as five:
        idmap.lookup(np.arange(1, 6))
    assert str(five.value) == "Unknown id IDs: 1, 2, 3, 4, 5."
    with pytest.raises(UnknownIdError) as six:
        idmap.lookup(np.arange(1, 7))
    assert str(six.value) == "Unknown id IDs: 1, 2, 3, 4, 5 ...."


def test_from_values_edge_cases_match_pandas():
    """Empty input, uint64 IDs beyond int64, wide and negative ranges: as pd.factorize(sort=True)."""
    import pandas as pd

    empty, codes = IdMap.from_values(np.array([], dtype=np.int64))
    assert len(empty) == 0 and codes.dtype == np.int32 and len(codes) == 0
    cases = [
        np.array([2**64 - 1, 2**64 - 2, 2**64 - 1], dtype=np.uint64),
        np.array([2**63 + 1, 2**63], dtype=np.uint64),
        np.array([0, 5, 0, 3]),
        np.array([-7, 10**12, -7, 3]),
        np.array([2**40, 2**40 + 2, 2**40]),
        # the widest span the presence table takes, starting at 1 (shifted by the minimum)
        np.array([1, 2**20, 1]),
        np.array([5, 2**20 + 4]),
    ]
    for values in cases:
        idmap, codes = IdMap.from_values(values)
        ref_codes, ref_uniques = pd.factorize(values, sort=True)
        assert codes.tolist() == ref_codes.tolist(), values
        assert idmap.raw_ids.tolist() == ref_uniques.tolist(), values
        assert idmap.lookup(values).tolist() == codes.tolist()


def test_unknown_text_ids_are_quoted_as_given():
    """A text ID is shown quoted and as typed (never the "nan" a numeric map coerces it to)."""
    with pytest.raises(UnknownIdError) as info:
        IdMap(np.array(["a", "b"], dtype=object)).lookup(["zz"])
    assert str(info.value) == "Unknown id ID: 'zz'."
    with pytest.raises(UnknownIdError) as info:
        IdMap([1, 2]).lookup(np.array(["x", "7"], dtype=object))
    assert str(info.value) == "Unknown id IDs: 'x', '7'."
