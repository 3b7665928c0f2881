"""The public, index-space model API that the other layers use, and the rule behind it:
no module outside `movierec.models` reads a private (`_name`) attribute of a model.

The rule is checked on the source: every attribute read `x._name` outside
`src/movierec/models/` whose name is a private member of a registered model class (or a
private attribute a model sets on itself) is an offence, unless `x` is `self` or `cls`.
An import arrow cannot show such a read, so the layers contract alone would miss it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from movierec.errors import CapabilityError, NotFittedError
from movierec.models import create
from movierec.models.registry import available, get_class

SRC = Path(__file__).resolve().parents[1] / "src" / "movierec"


def private_model_names() -> set[str]:
    """Private members of every registered model class, and private attributes that model
    code sets on `self` (`self._gram = ...`)."""
    names: set[str] = set()
    for name in available():
        for cls in get_class(name).__mro__:
            if cls.__module__.startswith("movierec.models"):
                names |= {n for n in vars(cls) if n.startswith("_") and not n.startswith("__")}
    for path in (SRC / "models").rglob("*.py"):
        names |= set(re.findall(r"self\.(_[a-z][A-Za-z0-9_]*)\s*=", path.read_text()))
    return names


def private_reads(root: Path, names: set[str], skip: str = "models") -> list[str]:
    """`path:line attr` for each read of a private model attribute outside `root/skip`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == skip:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute) or node.attr not in names:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "super"):
                continue
            if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                    and node.value.func.id == "super":
                continue
            found.append(f"{rel}:{node.lineno} {node.attr}")
    return found


def test_no_module_outside_models_reads_a_private_model_attribute():
    names = private_model_names()
    # the hooks the other layers used to read are among the names watched
    assert {"_score", "_predict", "_item_similarities", "_similarity_vectors", "_check_fitted"} <= names
    assert private_reads(SRC, names) == []


def test_the_check_catches_a_planted_private_read(tmp_path):
    """The scan bites: a copy of the package with one private hook read in the answer path fails it."""
    pkg = tmp_path / "movierec"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "base.py").write_text("class M:\n    def _score(self, u):\n        return self._score(u)\n")
    (pkg / "serving").mkdir()
    (pkg / "serving" / "reasons.py").write_text("def f(model):\n    return model._item_similarities([1])\n")
    (pkg / "answers.py").write_text("def g(self, server):\n    return self._score(1), server.model._predict(1, 2)\n")
    assert private_reads(pkg, private_model_names()) == [
        "answers.py:2 _predict", "serving/reasons.py:2 _item_similarities"]


@pytest.fixture(scope="module")
def fitted(small_split):
    ds = small_split.train
    return {name: create(name).fit(ds) for name in ("ease", "mf", "pop", "item-knn")}, ds


def test_public_index_space_methods_match_the_raw_id_api(fitted):
    models, ds = fitted
    users = np.arange(5)
    for name, model in models.items():
        scores = model.score_indices(users)
        assert scores.shape == (5, ds.n_items)
        np.testing.assert_array_equal(scores, model.score(model.users_.raw_ids[users]))
        mask = model.candidate_mask(model.items_.raw_ids[[1, 3]])
        assert mask.dtype == bool and mask.sum() == 2 and mask[1] and mask[3]
        assert model.candidate_mask(None) is None
    mf = models["mf"]
    np.testing.assert_allclose(mf.predict_indices(np.array([0, 1]), np.array([2, 3])),
                               mf.predict(mf.users_.raw_ids[[0, 1]], mf.items_.raw_ids[[2, 3]]), rtol=1e-6)
    sims = models["ease"].item_similarities(np.array([0, 1]))
    assert sims.shape == (2, ds.n_items)
    assert models["ease"].item_vectors() is None  # EASE's similarity is its weights, not a cosine
    assert models["mf"].item_vectors().shape[0] == ds.n_items


def test_public_methods_refuse_what_the_model_cannot_do(fitted):
    models, _ = fitted
    with pytest.raises(CapabilityError):
        models["pop"].item_similarities(np.array([0]))
    with pytest.raises(CapabilityError):
        models["ease"].predict_indices(np.array([0]), np.array([0]))
    assert models["pop"].item_vectors() is None
    fresh = create("ease")
    for call in (fresh.check_is_fitted, lambda: fresh.score_indices(np.array([0])),
                 lambda: fresh.candidate_mask([1]), fresh.item_vectors):
        with pytest.raises(NotFittedError):
            call()


@pytest.mark.parametrize("params", [{}, {"min_item_count": 20}])
def test_item_similarities_among_some_movies_are_those_columns(small_split, params):
    """`item_similarities(q, among=a)` is `item_similarities(q)[:, a]` for every model that
    declares similar movies, EASE's own gather (with movies left out of B) included."""
    ds = small_split.train
    q, among = np.array([0, 5, 17, 40]), np.array([3, 0, 99, 250, 5])
    models = [create("ease", **params).fit(ds)] + [create(name).fit(ds) for name in ("item-knn", "mf")] * (not params)
    for model in models:
        full = model.item_similarities(q)
        if model.name == "ease":  # entries of B: the very same numbers
            np.testing.assert_array_equal(model.item_similarities(q, among=among), full[:, among])
        else:  # cosines computed over fewer columns: BLAS may round differently
            np.testing.assert_allclose(model.item_similarities(q, among=among), full[:, among], rtol=1e-5, atol=1e-6)
    ease = models[0]
    if params:  # some queried and compared movies are outside B
        assert (~np.isin(np.concatenate([q, among]), ease.model_items_)).any()


def test_the_sparse_kernel_gives_the_public_operators_bits(small_split):
    """EASE scores one history through scipy's compiled CSR kernel directly (no scipy
    object); the public `csr_matrix @ dense` gives the same bits."""
    from movierec.models._sparse import csr_rows_dot

    X = create("ease").fit(small_split.train).user_items_
    W = np.random.default_rng(0).normal(size=(X.shape[1], 33)).astype(np.float32)
    rows = X[np.array([3, 0, 7])]
    for kernel in (True, False):
        got = csr_rows_dot(rows.indptr, rows.indices, rows.data, W, kernel=kernel)
        np.testing.assert_array_equal(got, (rows @ W))
