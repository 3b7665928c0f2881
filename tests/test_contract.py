"""The model contract (movierec.testing) over every registered model.

Each model is fitted once per session on `small_split` (300 users of ML-100K) and every
check runs on that fit, one test per (model, check) so a report names both. A registered
model missing from `MODEL_CASES` fails `test_table_covers_registry` and every one of
its checks.
"""

from __future__ import annotations

import pytest

from movierec.models import available, get_class
from movierec.testing.contract import (
    CHECKS,
    DEFAULT_FOLD_IN_FLOOR,
    FOLD_IN_FLOORS,
    MODEL_CASES,
    ContractCase,
    check_table_covers_registry,
    make_case,
)

NAMES = available()


@pytest.fixture(scope="session")
def cases(small_split):
    """name -> ContractCase, fitted on first use; a failed fit is remembered and re-raised."""
    cache: dict[str, ContractCase | BaseException] = {}

    def get(name: str) -> ContractCase:
        if name not in cache:
            try:
                cache[name] = make_case(name, small_split.train, small_split.test)
            except Exception as exc:  # every check of this model reports the failed fit
                cache[name] = exc
        value = cache[name]
        if isinstance(value, BaseException):
            raise AssertionError(f"{name}: fitting the contract case failed: {type(value).__name__}: {value}") from value
        return value

    return get


def test_table_covers_registry():
    check_table_covers_registry()


def test_table_check_bites():
    """A registered name without a case, or a case for an unregistered name, fails."""
    with pytest.raises(AssertionError, match="without a contract case.*brand-new"):
        check_table_covers_registry(NAMES + ["brand-new"])
    with pytest.raises(AssertionError, match="not registered: ease"):
        check_table_covers_registry([n for n in NAMES if n != "ease"])


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", NAMES)
def test_contract(name, check, cases, tmp_path):
    assert name in MODEL_CASES, f"registered model {name!r} has no contract case in MODEL_CASES"
    case = cases(name)
    result = CHECKS[check](case, tmp_path)
    if check == "fold_in" and result is not None:
        floor = FOLD_IN_FLOORS.get(name, DEFAULT_FOLD_IN_FLOOR)
        print(f"{name}: fold-in top-10 overlap with the trained answer {result:.3f} (floor {floor})")
        assert result >= floor, f"{name}: fold-in top-10 overlap {result:.3f} is below its floor {floor}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if get_class(n).capabilities.embeddings])
def test_embeddings_reproduce_recommend_on_all_of_ml100k(name, ml100k, tmp_path):
    """The architecture issue's check at full size: for every one of ML-100K's 943 users, the
    top-10 of users @ items.T (seen movies excluded) is exactly `recommend`'s top-10."""
    case = make_case(name, ml100k)
    CHECKS["embeddings"](case, tmp_path)
