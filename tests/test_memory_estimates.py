"""Memory estimates and the up-front refusal of a fit too big for the machine.

`movierec.resources` reads how much memory is free; each model's `memory_estimate` is a
simple formula, checked here against the measured peak of a small fit (tracemalloc, and
for the torch models torch's own allocations through its profiler) within a generous
factor for the models with a big matrix or big tables; `fit` refuses a model that would
not fit with one `ResourceError` sentence naming the need, the limit and the alternative.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from movierec import resources
from movierec.errors import ConfigError, ResourceError
from movierec.models import create, get_class
from movierec.resources import available_memory, format_bytes, parse_bytes
from movierec.training.options import RuntimeOptions

GIB = 1 << 30
#: ml-25m's size (the synthetic 25M set has the same)
ML25M = (162_541, 59_047, 25_000_095)

#: every model fitted without torch
NON_TORCH = ["ease", "seq-ease", "item-knn", "als", "bpr", "bias", "global-mean", "pop", "pop-recent", "random",
             "id-order", "genre-pop", "bpmf", "blend", "ranker"]

#: small settings so each measured fit takes a second or two
SMALL = {
    "item-knn": {"k": 30},
    "als": {"factors": 16, "iterations": 3},
    "bpr": {"factors": 16, "iterations": 3},
    "bpmf": {"dim": 8, "burn_in": 2, "samples": 10},
    "blend": {"models": [["bias", {}], ["item-knn", {"k": 30}]]},
    "ranker": {"generators": [["ease", {"regularization": 200.0}], ["pop", {}]], "n_candidates": 30,
               "n_estimators": 20},
    "mf": {"dim": 16, "epochs": 2},
    "mf-rank": {"dim": 16, "epochs": 2, "n_neg": 64},
    "neumf": {"dim": 8, "epochs": 2},
    "two-tower": {"dim": 16, "hidden": 32, "epochs": 1},
    "autorec": {"hidden": 50, "epochs": 2},
}

#: the PyTorch models: their tables, optimiser state and training tensors live in torch's
#: allocator, which tracemalloc does not see
TORCH = ["mf", "mf-rank", "neumf", "two-tower", "autorec"]

#: models whose peak is one big matrix (or a few per rating): the estimate must be within
#: 0.3x..4x of the measured peak. The others' peaks are a few small arrays, where the
#: estimate only has to be an upper bound of the right order.
BIG = ["ease", "seq-ease", "item-knn", "bpmf", "als", "bpr", "genre-pop", *TORCH]


def test_parse_bytes_reads_plain_bytes_and_units():
    assert parse_bytes("1048576") == 1 << 20
    assert parse_bytes("20G") == 20 * GIB
    assert parse_bytes("512M") == 512 << 20
    assert parse_bytes("1.5GiB") == int(1.5 * GIB)
    assert parse_bytes(" 64 kb ") == 64 << 10
    for bad in ("", "lots", "-5G", "0", "20X", "G"):
        with pytest.raises(ConfigError, match="MOVIEREC_MEMORY_LIMIT must be a positive number of bytes"):
            parse_bytes(bad)


def test_format_bytes():
    assert format_bytes(800) == "800 B"
    assert format_bytes(512 << 20) == "512.0 MiB"
    assert format_bytes(4 * 59_047**2) == "13.0 GiB"


def test_the_environment_overrides_the_machine(monkeypatch):
    monkeypatch.setenv("MOVIEREC_MEMORY_LIMIT", "3G")
    assert available_memory() == 3 * GIB
    monkeypatch.setenv("MOVIEREC_MEMORY_LIMIT", "three gigs")
    with pytest.raises(ConfigError, match="got 'three gigs'"):
        available_memory()
    monkeypatch.delenv("MOVIEREC_MEMORY_LIMIT")
    assert 0 < available_memory()


def test_cgroup_v2_and_v1_limits_minus_usage(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("8589934592\n")
    (v2 / "memory.current").write_text("3221225472\n")
    (v2 / "memory.stat").write_text("anon 1\ninactive_file 1073741824\n")
    assert resources._cgroup_free(v2) == 8 * GIB - (3 * GIB - GIB)  # reclaimable cache is free
    (v2 / "memory.max").write_text("max\n")
    assert resources._cgroup_free(v2) is None  # no limit
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(str(4 * GIB))
    (v1 / "memory" / "memory.usage_in_bytes").write_text(str(GIB))
    assert resources._cgroup_free(v1) == 3 * GIB
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")  # v1's "unlimited"
    assert resources._cgroup_free(v1) is None
    assert resources._cgroup_free(tmp_path / "nothing") is None
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   10000000 kB\n")
    assert resources._meminfo_available(meminfo) == 10_000_000 * 1024


def test_every_registered_model_has_an_estimate():
    from movierec.models import available

    for name in available():
        if name == "als-spark" and importlib.util.find_spec("pyspark") is None:
            continue
        model = create(name, **SMALL.get(name, {}))
        assert isinstance(model.memory_estimate(*ML25M), int), name


@pytest.mark.parametrize("name", NON_TORCH + TORCH)
def test_every_model_estimates_its_fit(name):
    model = create(name, **SMALL.get(name, {}))
    small = model.memory_estimate(1000, 2000, 100_000)
    big = model.memory_estimate(*ML25M)
    assert isinstance(small, int) and isinstance(big, int) and 0 < small < big


#: the torch fits measured: on the CPU, where the profiler sees torch's allocations
_ON_CPU = RuntimeOptions(seed=0, device="cpu", num_threads=1)


def _torch_peak(prof) -> int:
    """The highest sum of torch's CPU allocations less its frees, in time order, of a
    profiler run with `profile_memory=True`."""
    changes = []
    for event in prof.events():
        change = event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        if change:
            changes.append((event.time_range.start, change))
    current = peak = 0
    for _, change in sorted(changes):
        current += change
        peak = max(peak, current)
    return peak


def _peak_of_fit(model, train) -> int:
    # what the fits import on first use, imported first: an import is not the model's memory
    for module in ("implicit.cpu.als", "implicit.cpu.bpr", "lightgbm", "scipy.linalg", "torch"):
        importlib.import_module(module)

    gc.collect()
    if model.name not in TORCH:
        tracemalloc.start()
        try:
            model.fit(train)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    from torch.profiler import ProfilerActivity, profile

    # numpy's peak (read before the profiler builds its event objects) plus torch's: an
    # upper bound of the two together, which do not peak at the same moment
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        tracemalloc.start()
        try:
            model.fit(train, runtime=_ON_CPU)
            numpy_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return numpy_peak + _torch_peak(prof)


@pytest.mark.parametrize("name", NON_TORCH + TORCH)
def test_estimates_match_a_measured_fit(name, ml100k):
    # a Dataset of its own: EASE keeps its weights in the training Dataset's memo
    train = ml100k.subset(ml100k.user_idx < 600)
    model = create(name, **SMALL.get(name, {}))
    if name in TORCH:  # a first small fit, so torch's one-off set-up is not counted as the model's
        create(name, **SMALL[name]).fit(ml100k.subset(ml100k.user_idx < 30), runtime=_ON_CPU)
    estimate = model.memory_estimate(train.n_users, train.n_items, train.n_ratings)
    peak = _peak_of_fit(model, train)
    ratio = estimate / peak
    print(f"{name}: estimate {format_bytes(estimate)}, measured {format_bytes(peak)}, ratio {ratio:.2f}")
    if name in BIG:
        assert 0.3 <= ratio <= 4.0, f"{name}: estimate {estimate:,} is {ratio:.2f}x the measured peak {peak:,}"
    else:
        assert 0.3 <= ratio <= 40.0, f"{name}: estimate {estimate:,} is {ratio:.2f}x the measured peak {peak:,}"


@pytest.mark.parametrize("name, params, data, users", [
    ("mf", {"dim": 256, "epochs": 1, "batch_size": 256}, "ml_small", 20),
    ("autorec", {"hidden": 4000, "epochs": 1}, "ml100k", 600),
])
def test_torch_estimates_count_the_optimiser_state(name, params, data, users, request):
    # wide tables (mf: the first users of ML-latest-small, with all its 9,742 movies, over a
    # few ratings; autorec: a wide hidden layer over ML-100K's 943 users), so the weights,
    # their gradients and Adam's two moments are most of the peak
    dataset = request.getfixturevalue(data)
    train = dataset.subset(dataset.user_idx < users)
    create(name, **SMALL[name]).fit(dataset.subset(dataset.user_idx < 5), runtime=_ON_CPU)
    model = create(name, **params)
    estimate = model.memory_estimate(train.n_users, train.n_items, train.n_ratings)
    ratio = estimate / _peak_of_fit(model, train)
    assert 0.6 <= ratio <= 2.0, f"{name}: estimate {estimate:,} is {ratio:.2f}x the measured peak"


def test_dense_ease_at_ml25m_size_refuses_naming_max_items():
    dense = create("ease", max_items=None)
    with pytest.raises(ResourceError) as err:
        dense.check_fits(*ML25M, available=int(9.6 * GIB))
    message = str(err.value)
    assert message.startswith("ease needs 1") and "GiB for its 59,047 x 59,047 item matrix" in message
    assert "more than the 9.6 GiB this machine has free" in message
    assert "max_items=20000" in message and message.endswith("or als.") and message.count(".") <= 3
    # the default (20,000 most rated movies) fits in the issue's 20 GB
    create("ease").check_fits(*ML25M, available=20 * 10**9)
    assert create("ease").memory_estimate(*ML25M) < 4 * GIB
    assert create("seq-ease").memory_estimate(*ML25M) < 8 * GIB


def test_fit_refuses_before_allocating_under_a_small_limit(monkeypatch, small_split):
    monkeypatch.setenv("MOVIEREC_MEMORY_LIMIT", "1M")
    model = create("seq-ease")
    with pytest.raises(ResourceError, match=r"^seq-ease needs .* item matrix, more than the 1\.0 MiB this machine "
                                            r"has free; use seq-ease with a max_items below 20,000"):
        model.fit(small_split.train)
    with pytest.raises(Exception):  # nothing was fitted
        model.check_is_fitted()
    # a refusal is a ConfigError: every front end already turns it into its sentence
    assert issubclass(ResourceError, ConfigError)
    monkeypatch.setenv("MOVIEREC_MEMORY_LIMIT", "8G")
    assert model.fit(small_split.train) is model


def test_blend_and_ranker_add_up_their_parts():
    blend = create("blend", models=[["bias", {}], ["item-knn", {}]])
    parts = [create("bias").memory_estimate(*ML25M), create("item-knn").memory_estimate(*ML25M)]
    assert blend.memory_estimate(*ML25M) == sum(parts)
    ranker = create("ranker", generators=[["ease", {}], ["pop", {}]])
    gens = create("ease").memory_estimate(*ML25M) + create("pop").memory_estimate(*ML25M)
    assert ranker.memory_estimate(*ML25M) > 2 * gens
    # a ranker over dense EASE is refused for EASE's matrix, with its own name
    dense = create("ranker", generators=[["ease", {"max_items": None}], ["pop", {}]])
    with pytest.raises(ResourceError, match="^ranker needs"):
        dense.check_fits(*ML25M, available=20 * 10**9)


def test_composite_refusals_name_the_heavy_part_and_a_lighter_setting_that_fits():
    """blend and ranker at ML-25M size (20 GB): the sentence names each part's need, largest
    first, and a lighter setting; that setting fits, and a rating model is pointed at rating
    models (als and pop predict no ratings)."""
    limit = 20 * 10**9
    with pytest.raises(ResourceError) as err:
        create("blend").check_fits(*ML25M, available=limit)
    message = str(err.value)
    assert "with its bases (autorec 2" in message and message.index("autorec") < message.index("bpmf")
    assert message.endswith('e.g. models=[["mf", {}], ["bias", {}]], or use one rating model such as mf.')
    create("blend", models=[["mf", {}], ["bias", {}]]).check_fits(*ML25M, available=limit)
    with pytest.raises(ResourceError) as err:
        create("ranker").check_fits(*ML25M, available=limit)
    message = str(err.value)
    assert "with its generators (seq-ease " in message and "pop " in message and "each held twice" in message
    lighter = [["ease", {"max_items": 10000}], ["als", {}], ["pop", {}]]
    assert json.dumps(lighter) in message
    create("ranker", generators=lighter).check_fits(*ML25M, available=limit)
    with pytest.raises(ResourceError, match=r"such as mf or bias\.$"):
        create("autorec").check_fits(*ML25M, available=limit)
    with pytest.raises(ResourceError, match=r"such as als or pop\.$"):
        create("two-tower").check_fits(*ML25M, available=GIB)


def test_the_cli_says_one_sentence_and_writes_nothing(tmp_path):
    out = tmp_path / "bundle"
    env = {**os.environ, "MOVIEREC_MEMORY_LIMIT": "1M"}
    proc = subprocess.run([sys.executable, "-m", "movierec", "train", "--model", "ease", "--dataset", "ml-100k",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: ease needs") and "with a max_items below 20,000" in errors[0]
    assert not out.exists()


def test_get_class_declares_the_estimate_on_every_model():
    from movierec.models.base import Recommender

    for name in NON_TORCH + TORCH:
        assert get_class(name).memory_estimate is not Recommender.memory_estimate, name
    assert np.isfinite(float(create("ease").memory_estimate(10, 10, 10)))
