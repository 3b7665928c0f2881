"""Retrieval (issue 10, item 4): a FAISS index over any model that declares embeddings.

On full ML-100K the exact index answers every user's top-10 exactly as the model's own
`recommend` does (ties tolerated), the approximate indexes overlap it >= 0.99, seen movies
never come back, the index travels inside the bundle (and a tampered one is refused),
and the CLI answers through it. Synthetic clustered vectors check the search itself.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec.errors import BundleError, CapabilityError, ConfigError
from movierec.ranking import Recommendations

faiss = pytest.importorskip("faiss")

from movierec.retrieval import ModelIndex, VectorIndex, index_for_bundle, single_thread, store_index, stored_index  # noqa: E402
from movierec.retrieval import index as index_module  # noqa: E402

MODELS = {"als": {}, "mf-rank": {"epochs": 3}}


# -- fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def als(ml100k):
    """als fitted on all of ML-100K (about a second)."""
    from movierec.experiments.train import fit_model

    return fit_model("als", ml100k, seed=0).model


@pytest.fixture(scope="module")
def fitted(ml100k, als):
    """als and mf-rank fitted on all of ML-100K."""
    from movierec.experiments.train import fit_model

    return {"als": als, "mf-rank": fit_model("mf-rank", ml100k, params=MODELS["mf-rank"], seed=0).model}


@pytest.fixture(scope="module")
def indexes(fitted):
    """(model name, kind) -> ModelIndex, built once."""
    return {(name, kind): ModelIndex.build(model, kind) for name, model in fitted.items()
            for kind in ("exact", "ivf", "hnsw")}


@pytest.fixture(scope="module")
def answers(fitted, indexes):
    """(model name, kind) -> (the model's own top-10 of every user, the index's)."""
    out = {}
    for (name, kind), mi in indexes.items():
        model = fitted[name]
        users = model.users_.raw_ids
        out[(name, kind)] = (model.recommend(users, k=10), mi.recommend(users, k=10))
    return out


def clustered(n: int, d: int, seed: int = 0, norm_spread: float = 0.3) -> np.ndarray:
    """Gaussian-mixture vectors with log-normal norms (popularity-like), float32 (n, d)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d))
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (x * rng.lognormal(0, norm_spread, (n, 1))).astype(np.float32)


def exact_top(q: np.ndarray, items: np.ndarray, k: int, exclude=None) -> np.ndarray:
    scores = q @ items.T
    if exclude is not None:
        for row, ex in enumerate(exclude):
            scores[row, ex] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def assert_exact_top(found: np.ndarray, q: np.ndarray, items: np.ndarray, k: int, exclude=None,
                     tol: float = 1e-5) -> None:
    """`found` (n, k) is the exact top-k of `q @ items.T` with `exclude` left out, best first,
    up to ties: the float64 scores of its movies are brute force's k best. (Float32
    products taken along another BLAS path, or on another CPU, may order near-ties
    differently; a wrong movie shows as a different score.)"""
    scores = q.astype(np.float64) @ items.astype(np.float64).T
    if exclude is not None:
        for row, ex in enumerate(exclude):
            scores[row, ex] = -np.inf
    best = -np.sort(-scores, axis=1)[:, :k]
    np.testing.assert_allclose(np.take_along_axis(scores, found, axis=1), best, rtol=tol, atol=tol)


def model_scores(model, user_ids, item_ids) -> np.ndarray:
    """The embedding dot products of raw (user, movie) pairs."""
    emb = model.embeddings()
    u = model.user_index(user_ids)
    i = model.item_index(item_ids.ravel()).reshape(item_ids.shape)
    return np.einsum("nd,nkd->nk", emb.users[u], emb.items[i])


def tie_tolerant_mismatches(model, ref, got, tol: float = 1e-4) -> list:
    """Users whose index top-k differs from the model's beyond exact (rounding-level) ties
    at the k-th score."""
    all_scores = model.embeddings().users @ model.embeddings().items.T
    bad = []
    for row, (u, a, b) in enumerate(zip(ref.user_ids, ref.item_ids, got.item_ids)):
        diff = set(a.tolist()) ^ set(b.tolist())
        if not diff:
            continue
        s = all_scores[model.user_index([u])[0]]
        kth = min(ref.scores[row, -1], s[model.item_index(b)].min())
        off = [m for m in diff if abs(s[model.item_index([m])[0]] - kth) > tol * max(1.0, abs(kth))]
        if off:
            bad.append(u)
    return bad


# -- ML-100K: the index answers what the model answers -------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_exact_index_top10_equals_model_recommend_for_every_user(name, fitted, answers):
    model = fitted[name]
    ref, got = answers[(name, "exact")]
    assert len(got) == model.users_.__len__() == 943
    assert np.array_equal(got.user_ids, ref.user_ids)
    assert (got.lengths == 10).all()
    assert tie_tolerant_mismatches(model, ref, got) == []
    # the scores are the model's own dot products (mf-rank and als score by them)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("name", list(MODELS))
def test_approximate_index_overlaps_model_top10(name, kind, fitted, answers, indexes):
    model = fitted[name]
    ref, got = answers[(name, kind)]
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(ref.item_ids, got.item_ids)])
    assert overlap >= 0.99, (kind, indexes[(name, kind)].index.params, overlap)
    # candidates are re-scored exactly: every score is the movie's true dot product
    np.testing.assert_allclose(got.scores, model_scores(model, got.user_ids, got.item_ids), rtol=1e-5, atol=1e-5)
    assert (np.diff(got.scores, axis=1) <= 1e-6).all()  # best first


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_seen_movies_never_returned(kind, fitted, answers):
    model = fitted["als"]
    _, got = answers[("als", kind)]
    seen = model.seen_
    for row, u in enumerate(model.user_index(got.user_ids)):
        returned = model.item_index(got.items_of(row))
        assert not np.isin(returned, seen.indices[seen.indptr[u]:seen.indptr[u + 1]]).any()


@pytest.mark.slow
def test_include_seen_and_candidates_as_the_model(fitted, indexes):
    model, mi = fitted["als"], indexes[("als", "ivf")]
    users = model.users_.raw_ids[:50]
    with_seen, ref = mi.recommend(users, k=10, exclude_seen=False), model.recommend(users, k=10, exclude_seen=False)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(with_seen.item_ids, ref.item_ids)]) >= 0.99
    pool = model.items_.raw_ids[::7]
    got = mi.recommend(users, k=10, candidates=pool)
    assert np.isin(got.item_ids, pool).all()
    ref = model.recommend(users, k=10, candidates=pool)
    assert tie_tolerant_mismatches(model, ref, got) == []


@pytest.mark.slow
def test_single_queries_answer_what_the_batch_answers(fitted, indexes):
    model, mi = fitted["mf-rank"], indexes[("mf-rank", "hnsw")]
    users = model.users_.raw_ids[::97]
    batch = mi.recommend(users, k=10)
    for row, u in enumerate(users):
        one = mi.recommend([u], k=10)
        # one query scores along another BLAS path: the same list up to rounding-level ties
        ref = Recommendations(batch.user_ids[row:row + 1], batch.item_ids[row:row + 1], batch.scores[row:row + 1])
        assert tie_tolerant_mismatches(model, ref, one) == []
        np.testing.assert_allclose(one.scores[0], batch.scores[row], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_new_person_through_fold_in_vector(fitted, indexes):
    model = fitted["als"]
    liked = [1, 71, 95, 588]
    ref = model.recommend_new(liked, k=10)
    for kind in ("exact", "hnsw"):
        got = indexes[("als", kind)].recommend_new(liked, k=10)
        assert got.user_ids.tolist() == [-1]
        assert not np.isin(got.item_ids, liked).any()
        assert len(set(got.item_ids[0].tolist()) & set(ref.item_ids[0].tolist())) >= 9
    # the model's own fold-in scores of als are the vector's dot products
    got = indexes[("als", "exact")].recommend_new(liked, k=10)
    np.testing.assert_allclose(got.scores[0], ref.scores[0], rtol=1e-4, atol=1e-5)


def test_similar_is_the_exact_inner_product_neighbourhood(als):
    model, mi = als, ModelIndex.build(als, "exact")
    items = model.embeddings().items
    got = mi.similar([50, 172], k=5)
    q = model.item_index([50, 172])
    assert_exact_top(model.item_index(got.item_ids.ravel()).reshape(2, 5), items[q], items, 5,
                     exclude=[[i] for i in q])
    assert not np.isin([50, 172], got.item_ids).any()


def test_model_without_embeddings_is_refused(small_split):
    from movierec.experiments.train import fit_model

    ease = fit_model("ease", small_split.train).model
    with pytest.raises(CapabilityError, match="embeddings"):
        ModelIndex.build(ease)


def test_unknown_kind_and_bad_parameters_are_config_errors(als):
    with pytest.raises(ConfigError, match="kind"):
        ModelIndex.build(als, "annoy")
    with pytest.raises(ConfigError, match="nlist"):
        VectorIndex.build(clustered(100, 4), "ivf", nlist=1000)


# -- bundles ---------------------------------------------------------------------------
def _bundle_with_index(model, ml100k, kind, path):
    from movierec.artifacts import Bundle, save_bundle

    bundle = Bundle.from_model(model, ml100k)
    store_index(bundle, ModelIndex.build(model, kind))
    save_bundle(bundle, path)
    return bundle


def test_index_round_trips_through_the_bundle(als, ml100k, tmp_path):
    from movierec.artifacts import load_bundle, verify_bundle

    model = als
    bundle = _bundle_with_index(model, ml100k, "hnsw", tmp_path / "b")
    files = verify_bundle(tmp_path / "b")["files"]
    assert {"index.faiss", "index.json"} <= set(files)
    loaded = load_bundle(tmp_path / "b")
    restored = stored_index(loaded)
    assert restored is not None and restored.kind == "hnsw"
    assert restored.index.params == stored_index(bundle).index.params
    users = model.users_.raw_ids[:200]
    before = ModelIndex(model, stored_index(bundle).index).recommend(users, k=10)
    after = restored.recommend(users, k=10)
    assert np.array_equal(before.item_ids, after.item_ids)
    header = json.loads((tmp_path / "b" / "index.json").read_text())
    assert header["kind"] == "hnsw" and header["n_items"] == 1682 and header["dim"] == model.embeddings().items.shape[1]
    # the stored index is used when its kind is asked for (or any kind), else one is built
    assert index_for_bundle(loaded, "hnsw")[1] is False
    assert index_for_bundle(loaded, "auto")[1] is False
    built, fresh = index_for_bundle(loaded, "exact")
    assert fresh and built.kind == "exact"


def test_bundle_without_index_still_loads(als, ml100k, tmp_path):
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    save_bundle(Bundle.from_model(als, ml100k), tmp_path / "plain")
    loaded = load_bundle(tmp_path / "plain")
    assert loaded.extras == {} and stored_index(loaded) is None
    assert index_for_bundle(loaded, "auto") [0].kind == "exact"


@pytest.mark.parametrize("victim", ["index.faiss", "index.json"])
def test_tampered_index_file_is_refused(victim, als, ml100k, tmp_path):
    from movierec.artifacts import load_bundle

    _bundle_with_index(als, ml100k, "ivf", tmp_path / "b")
    path = tmp_path / "b" / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=victim.replace(".", r"\.")):
        load_bundle(tmp_path / "b")


def test_unlisted_index_file_is_refused(als, ml100k, tmp_path):
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    save_bundle(Bundle.from_model(als, ml100k), tmp_path / "b")
    (tmp_path / "b" / "index.faiss").write_bytes(b"\0" * 16)
    with pytest.raises(BundleError, match="does not list"):
        load_bundle(tmp_path / "b")


def test_index_of_another_model_is_refused(als, ml100k):
    from movierec.artifacts import Bundle
    from movierec.experiments.train import fit_model

    als_index = ModelIndex.build(als, "exact")
    other = Bundle.from_model(fit_model("als", ml100k, params={"factors": 32}).model, ml100k)
    with pytest.raises(ConfigError, match="movies of dimension|other movie vectors"):
        store_index(other, als_index)
    # the same files smuggled into another model's bundle
    good = Bundle.from_model(als, ml100k)
    store_index(good, als_index)
    other.extras = dict(good.extras)
    with pytest.raises(BundleError, match="does not fit its model"):
        stored_index(other)
    # same shape, other vectors
    als2 = fit_model("als", ml100k, params={"seed": 7}).model
    other = Bundle.from_model(als2, ml100k)
    other.extras = dict(good.extras)
    with pytest.raises(BundleError, match="other movie vectors"):
        stored_index(other)


def test_extra_file_names_are_checked(als, ml100k, tmp_path):
    from movierec.artifacts import Bundle, save_bundle

    for bad in ("../x", "state.safetensors", "manifest.json", ".hidden"):
        bundle = Bundle.from_model(als, ml100k)
        bundle.extras[bad] = b"x"
        with pytest.raises(BundleError, match="extra file"):
            save_bundle(bundle, tmp_path / "b", overwrite=True)


# -- the search itself, on synthetic clustered vectors -----------------------------------
@pytest.fixture(scope="module")
def synth():
    items = clustered(10_000, 16, seed=1)
    queries = clustered(300, 16, seed=2, norm_spread=0.0)
    return items, queries


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_reaches_its_target(kind, synth):
    items, queries = synth
    items = items[:5000]
    index = VectorIndex.build(items, kind, target_recall=0.95, recall_k=50, tune_queries=queries[:100])
    assert index.header["tuned"]["recall"] >= 0.95
    held_out = queries[100:]
    found, scores = index.search(held_out, 50)
    truth = exact_top(held_out, items, 50)
    recall = np.mean([len(np.intersect1d(f, t)) / 50 for f, t in zip(found, truth)])
    assert recall >= 0.93
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", held_out, items[found]), rtol=1e-5, atol=1e-5)


def test_hnsw_transform_handles_unequal_norms(synth):
    """Unequal norms: norm strata, each over the MIPS-to-cosine transform, covering every item once."""
    items, queries = synth
    items = items[:3000]
    index = VectorIndex.build(items, "hnsw", ef_search=128)
    assert index.params["strata"] == 4 and all(p.augment for p in index._parts)
    assert sorted(np.concatenate([faiss.vector_to_array(p.index.id_map) for p in index._parts])) == list(range(3000))
    found, _ = index.search(queries, 10)
    truth = exact_top(queries, items, 10)
    assert np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found, truth)]) >= 0.95
    # vectors of equal norm need no transform
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    plain = VectorIndex.build(unit, "hnsw", ef_search=64)
    assert plain.params["strata"] == 1 and not plain._parts[0].augment


def test_mips_transform_ranks_by_inner_product(synth):
    """A near-exhaustive graph over ONE norm stratum finds the exact top-k only when the
    transform turns inner products into cosines (no re-scoring can fix a wrong set)."""
    _, queries = synth
    items = clustered(2000, 16, seed=3, norm_spread=1.0)
    index = VectorIndex.build(items, "hnsw", strata=1, ef_search=2000, overfetch=1.0)
    assert index._parts[0].augment
    found, _ = index.search(queries[:50], 10)
    assert_exact_top(found, queries[:50], items, 10)


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_exclusions_allowed_mask_and_short_rows(kind, synth):
    items, queries = synth
    items, queries = items[:3000], queries[:20]
    index = VectorIndex.build(items, kind, nprobe=1, ef_search=16) if kind != "exact" else VectorIndex.build(items)
    rng = np.random.default_rng(0)
    excl = [rng.choice(3000, size=int(s), replace=False) for s in rng.integers(0, 2900, len(queries))]
    csr = sp.csr_matrix((np.ones(sum(map(len, excl))), np.concatenate(excl),
                         np.concatenate([[0], np.cumsum([len(e) for e in excl])])), shape=(len(queries), 3000))
    a, sa = index.search(queries, 200, exclude=excl)
    b, sb = index.search(queries, 200, exclude=csr)
    assert np.array_equal(a, b)
    for row, ex in enumerate(excl):
        assert not np.isin(a[row], ex).any()
        assert (a[row] >= 0).sum() == min(200, 3000 - len(ex))  # short rows are topped up exactly
    allowed = np.zeros(3000, dtype=bool)
    allowed[rng.choice(3000, 100, replace=False)] = True
    c, _ = index.search(queries, 150, allowed=allowed)
    assert ((c >= 0).sum(axis=1) == 100).all() and allowed[c[c >= 0]].all()
    # k beyond the catalog: every item once
    d, _ = index.search(queries[:1], 5000)
    assert d.shape == (1, 3000) and np.array_equal(np.sort(d[0]), np.arange(3000))


def test_exact_kind_is_exact_with_exclusions(synth):
    items, queries = synth
    index = VectorIndex.build(items, "exact")
    excl = [np.arange(i, 10_000, 3) for i in range(len(queries))]
    found, _ = index.search(queries, 20, exclude=excl)
    assert_exact_top(found, queries, items, 20, exclude=excl)


# -- batches mixing rows with and without exclusions (one fetch group may have none) -----
def faiss_path_exact(items: np.ndarray) -> VectorIndex:
    """An exact index that answers through FAISS + filter + re-score, as it does on a GPU.

    On the CPU the exact kind ranks with one BLAS product; with a GPU copy it fetches
    candidates from the flat index and filters them like IVF and HNSW. Handing it its own
    CPU flat index as the "GPU" copy runs that path on machines without a GPU.
    """
    index = VectorIndex.build(items, "exact")
    index._gpu = [part.index for part in index._parts]
    return index


def brute_scores(q: np.ndarray, items: np.ndarray, exclude, allowed) -> np.ndarray:
    """Every (query, item) dot product in float64, -inf where excluded or disallowed."""
    scores = q.astype(np.float64) @ items.astype(np.float64).T
    for row, ex in enumerate(exclude):
        scores[row, np.asarray(ex, dtype=np.int64)] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    return scores


def check_against_brute_force(index: VectorIndex, q, k, exclude, allowed, exact: bool, given=None) -> None:
    """The index's answer is well formed, never returns an excluded or disallowed movie,
    fills every row to min(k, movies left), scores are the true dot products, and (when
    `exact`) the scores are brute force's top-k scores (so the list is brute force's up
    to ties). `exclude` is a list of index arrays; `given` (default `exclude`) is what
    the index is asked with (e.g. the same exclusions as a CSR matrix)."""
    idx, val = index.search(q, k, exclude=exclude if given is None else given, allowed=allowed)
    n_items = index.n_items
    kk = min(k, n_items)
    assert idx.shape == val.shape == (len(q), kk)
    ref = brute_scores(q, index.items, exclude, allowed)
    for row in range(len(q)):
        owed = min(kk, int(np.isfinite(ref[row]).sum()))
        got, got_val = idx[row], val[row]
        assert (got[:owed] >= 0).all() and (got[owed:] == -1).all(), (row, owed, got)
        assert np.isneginf(got_val[owed:]).all()
        real = got[:owed]
        assert len(np.unique(real)) == owed
        assert np.isfinite(ref[row, real]).all(), "an excluded or disallowed movie came back"
        np.testing.assert_allclose(got_val[:owed], ref[row, real], rtol=1e-4, atol=1e-5)
        assert (np.diff(got_val[:owed]) <= 1e-6).all()  # best first
        if exact:
            best = np.sort(ref[row][np.isfinite(ref[row])])[::-1][:owed]
            np.testing.assert_allclose(got_val[:owed], best, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def random2000():
    """2,000 Gaussian movie vectors (dim 16) and two queries, and one index of each kind."""
    rng = np.random.default_rng(0)
    items = rng.standard_normal((2000, 16)).astype(np.float32)
    queries = rng.standard_normal((2, 16)).astype(np.float32)
    indexes = {"exact": VectorIndex.build(items, "exact"), "exact-faiss": faiss_path_exact(items),
               "ivf": VectorIndex.build(items, "ivf"), "hnsw": VectorIndex.build(items, "hnsw")}
    return items, queries, indexes


@pytest.mark.parametrize("kind", ["exact", "exact-faiss", "ivf", "hnsw"])
def test_a_batch_with_a_row_without_exclusions(kind, random2000):
    """[[], arange(100)]: the two rows fall in different fetch groups, one of which has
    no exclusions at all (was an IndexError in IVF and HNSW)."""
    items, queries, indexes = random2000
    index = indexes[kind]
    exclude = [np.array([], dtype=np.int64), np.arange(100)]
    found, scores = index.search(queries, 10, exclude=exclude)
    assert not np.isin(found[1], np.arange(100)).any()
    assert (found >= 0).all()
    check_against_brute_force(index, queries, 10, exclude, None, exact=kind.startswith("exact"))
    # the row without exclusions gets the scores it gets alone (one query: another BLAS path)
    _, alone = index.search(queries[:1], 10)
    np.testing.assert_allclose(scores[0], alone[0], rtol=1e-5, atol=1e-6)
    # the same as a CSR matrix (the same computation), and with the empty row last
    csr = sp.csr_matrix((np.ones(100), np.arange(100), [0, 0, 100]), shape=(2, 2000))
    assert np.array_equal(index.search(queries, 10, exclude=csr)[0], found)
    check_against_brute_force(index, queries[::-1], 10, exclude[::-1], None, exact=kind.startswith("exact"))


@pytest.fixture(scope="module")
def temporal_als(ml100k):
    """als fitted on the training part of ML-100K's temporal split (192 users have no
    training rows: their vectors are zero and they exclude nothing)."""
    from movierec.data.split import temporal_split
    from movierec.experiments.train import fit_model

    return fit_model("als", temporal_split(ml100k).train, seed=0).model


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_user_without_history_batched_with_a_heavy_user(kind, temporal_als):
    """`recommend([no_history_user, heavy_user])` through the index (what
    `POST /recommend/batch` calls) answers what the model answers."""
    model = temporal_als
    seen = model.seen_
    counts = np.diff(seen.indptr)
    assert (counts == 0).sum() > 0
    users = model.users_.raw_ids[[int(np.flatnonzero(counts == 0)[0]), int(np.argmax(counts))]]
    mi = ModelIndex.build(model, kind)
    got = mi.recommend(users, k=10)
    ref = model.recommend(users, k=10)
    assert np.array_equal(got.user_ids, users) and (got.lengths == 10).all()
    heavy = model.user_index(users[1:])[0]
    heavy_seen = seen.indices[seen.indptr[heavy]:seen.indptr[heavy + 1]]
    assert not np.isin(model.item_index(got.items_of(1)), heavy_seen).any()
    assert tie_tolerant_mismatches(model, ref, got) == []
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-4, atol=1e-5)
    # each user alone gets the scores the batch gave (one query takes another BLAS path)
    for row, u in enumerate(users):
        np.testing.assert_allclose(mi.recommend([u], k=10).scores[0], got.scores[row], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def small_indexes():
    """600 clustered movie vectors of unequal norms (dim 8) and indexes over them: exact
    (BLAS), exact through FAISS (the GPU path), exhaustive IVF (every list probed: exact),
    IVF probing one list, and a narrow HNSW (both approximate)."""
    items = clustered(600, 8, seed=5, norm_spread=0.5)
    return items, {
        "exact": (VectorIndex.build(items, "exact"), True),
        "exact-faiss": (faiss_path_exact(items), True),
        "ivf-exhaustive": (VectorIndex.build(items, "ivf", nprobe=10_000), True),
        "ivf": (VectorIndex.build(items, "ivf", nprobe=1), False),
        "hnsw": (VectorIndex.build(items, "hnsw", ef_search=16), False),
    }


_ROW_PATTERN = st.tuples(st.sampled_from(["empty", "full", "all-but", "random", "prefix"]),
                         st.integers(0, 600), st.integers(0, 2**16))


def _excluded(pattern: tuple[str, int, int], n_items: int) -> np.ndarray:
    """The item indices one row excludes: none, all, all but `size`, a random `size`, or
    the first `size`."""
    how, size, seed = pattern
    rng = np.random.default_rng(seed)
    size = min(size, n_items)
    if how == "empty":
        return np.array([], dtype=np.int64)
    if how == "full":
        return np.arange(n_items)
    if how == "all-but":
        return np.sort(rng.choice(n_items, n_items - min(size, 20), replace=False))
    if how == "random":
        return np.sort(rng.choice(n_items, size, replace=False))
    return np.arange(size)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW_PATTERN, min_size=1, max_size=6),
       k=st.integers(1, 80),
       allowed_share=st.sampled_from([None, 0.9, 0.6, 0.1]),
       as_csr=st.booleans(),
       zero_first=st.booleans(),
       seed=st.integers(0, 2**16))
@example(rows=[("empty", 0, 0), ("prefix", 100, 0)], k=10, allowed_share=None, as_csr=False, zero_first=False,
         seed=0)
@example(rows=[("prefix", 100, 0), ("empty", 0, 0), ("full", 0, 0)], k=10, allowed_share=0.9, as_csr=True,
         zero_first=True, seed=1)
def test_search_equals_brute_force_for_any_exclusion_pattern(small_indexes, rows, k, allowed_share, as_csr,
                                                            zero_first, seed):
    """Random exclusion patterns (empty rows, full rows, mixed fetch groups), with and
    without an allowed mask: the exact kinds answer brute force's list (up to ties), the
    approximate ones never return an excluded or disallowed movie and fill every row."""
    items, indexes = small_indexes
    n_items = len(items)
    rng = np.random.default_rng(seed)
    q = clustered(len(rows), 8, seed=seed, norm_spread=0.0)
    if zero_first:
        q[0] = 0.0  # a user without history has a zero vector: every movie ties
    exclude = [_excluded(p, n_items) for p in rows]
    allowed = None if allowed_share is None else rng.random(n_items) < allowed_share
    given_exclude = exclude
    if as_csr:
        given_exclude = sp.csr_matrix(
            (np.ones(sum(map(len, exclude))), np.concatenate(exclude),
             np.concatenate([[0], np.cumsum([len(e) for e in exclude])])), shape=(len(rows), n_items))
    for index, exact in indexes.values():
        check_against_brute_force(index, q, k, exclude, allowed, exact, given=given_exclude)


def test_auto_picks_exact_for_small_catalogs_and_ivf_above(synth, monkeypatch):
    items, _ = synth
    assert VectorIndex.build(items[:2000]).kind == "exact"
    monkeypatch.setattr(index_module, "AUTO_EXACT_MAX_ITEMS", 1000)
    assert VectorIndex.build(items[:2000], nprobe=4).kind == "ivf"


def test_serialised_index_refuses_other_vectors(synth):
    items, queries = synth
    index = VectorIndex.build(items[:3000], "ivf", nprobe=8)
    data, header = index.to_bytes()
    back = VectorIndex.from_bytes(data, header, items[:3000])
    assert np.array_equal(back.search(queries, 10)[0], index.search(queries, 10)[0])
    with pytest.raises(ConfigError, match="3000 movies of dimension 16"):
        VectorIndex.from_bytes(data, header, items[:2000])
    shifted = items[:3000].copy()
    shifted[0, 0] += 1
    with pytest.raises(ConfigError, match="other movie vectors"):
        VectorIndex.from_bytes(data, header, shifted)
    with pytest.raises(ConfigError, match="does not describe"):
        VectorIndex.from_bytes(data[:-8], header, items[:3000])


def test_single_queries_run_on_one_thread_and_restore_it():
    before = faiss.omp_get_max_threads()
    with single_thread():
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


# -- CLI -------------------------------------------------------------------------------
def test_cli_train_and_recommend_with_an_index(tmp_path):
    from typer.testing import CliRunner

    from movierec.artifacts import load_bundle
    from movierec.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["train", "-m", "als", "-d", "ml-100k", "-o", str(tmp_path / "m"), "--index", "ivf",
                              "-q", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["index"]["kind"] == "ivf"
    bundle = load_bundle(tmp_path / "m")
    assert stored_index(bundle).kind == "ivf"
    ref = bundle.model.recommend([1], k=10)
    res = runner.invoke(app, ["recommend", "--model-dir", str(tmp_path / "m"), "--user", "1", "--index", "ivf",
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["index"] == "ivf" and "in memory" not in res.stderr
    assert [r["movie_id"] for r in doc["items"]] == ref.item_ids[0].tolist()
    res = runner.invoke(app, ["recommend", "--model-dir", str(tmp_path / "m"), "--liked", "1,71,95", "--index",
                              "hnsw", "--json"])
    assert res.exit_code == 0, res.output
    assert "built a hnsw index in memory" in res.stderr
    assert json.loads(res.stdout)["index"] == "hnsw"
    res = runner.invoke(app, ["recommend", "--model-dir", str(tmp_path / "m"), "--user", "1", "--index", "lsh"])
    assert res.exit_code != 0


def test_cli_refuses_an_index_for_a_model_without_embeddings(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cmd = [str(Path(sys.executable).parent / "movierec"), "train", "-m", "ease", "-d", "ml-100k", "-o", str(tmp_path / "e"),
           "--index", "ivf", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: Model 'ease' gives no embeddings")
    assert not (tmp_path / "e").exists()


def test_recommend_loads_faiss_only_with_an_index(tmp_path, als, ml100k):
    """`movierec recommend` stays light: FAISS only with --index, and never torch & co."""
    import subprocess
    import sys

    from movierec.artifacts import Bundle, save_bundle

    save_bundle(Bundle.from_model(als, ml100k), tmp_path / "m")
    probe = ("import sys\nfrom movierec.cli import main\nsys.argv = ['movierec', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print('LOADED', sorted(m for m in ('faiss', 'torch', 'optuna', 'sklearn', 'matplotlib') "
             "if m in sys.modules))\n")
    for extra, expected in (([], "LOADED []"), (["--index", "exact"], "LOADED ['faiss']")):
        proc = subprocess.run([sys.executable, "-c", probe, "recommend", "--model-dir", str(tmp_path / "m"),
                               "--user", "1", "--json", *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == expected


def test_concurrent_single_queries_give_the_blas_threads_back():
    """The BLAS limit is process-wide: overlapping single-query blocks (a threaded server)
    must not leave BLAS stuck at one thread, whichever block ends first."""
    import threading

    from threadpoolctl import threadpool_info

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    before = blas_threads()
    entered, leave = threading.Event(), threading.Event()

    def worker():
        with single_thread():
            entered.set()
            leave.wait(timeout=60)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert entered.wait(timeout=60)
    with single_thread():  # entered second ...
        leave.set()
        t.join(timeout=60)  # ... and the first block ends inside it
    assert blas_threads() == before
