"""Training past one process: torchrun + DDP (gloo on loopback), rank 0 alone writing.

The torchrun tests start real processes (`python -m torch.distributed.run --standalone
--nproc-per-node 2 -m movierec ...`), so they are few and short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.errors import ConfigError, DatasetError
from movierec.training.distributed import DistributedContext

#: mf on u1 for this many epochs at most (early stopping on the internal hold-out)
_PARAMS = ["-p", "epochs=8", "-p", "dim=16"]


def _write(ds, path: Path) -> Path:
    pd.DataFrame({"userId": ds.users.raw(ds.user_idx), "movieId": ds.items.raw(ds.item_idx), "rating": ds.rating,
                  "timestamp": ds.timestamp}).to_csv(path, index=False)
    return path


def _torchrun(args: list[str], tmp_path: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOVIEREC_DIST_TIMEOUT": "120", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "movierec", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


# -- the shard rule ---------------------------------------------------------------------
def test_shards_are_disjoint_equal_and_cover_all_but_a_remainder():
    n, world = 103, 4
    shards = [DistributedContext(world_size=world, rank=r, backend="gloo").shard_rows(n) for r in range(world)]
    assert {len(s) for s in shards} == {n // world}  # the same number of steps on every rank
    joined = np.concatenate(shards)
    assert len(np.unique(joined)) == len(joined)  # disjoint
    assert len(joined) == n - n % world
    np.testing.assert_array_equal(DistributedContext().shard_rows(5), np.arange(5))


# -- ranks that disagree: the same sentence on every rank, no hang ----------------------
def _disagreeing_rank(rank: int, port: int, n_totals: tuple[int, ...], results) -> None:
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from datetime import timedelta

    dist.init_process_group("gloo", rank=rank, world_size=len(n_totals), timeout=timedelta(seconds=60))
    ctx = DistributedContext(world_size=len(n_totals), rank=rank, backend="gloo")
    try:
        ctx.check_shards(n_totals[rank], len(ctx.shard_rows(n_totals[rank])))
        results.put((rank, "ok", ""))
    except (DatasetError, ConfigError) as exc:
        results.put((rank, type(exc).__name__, str(exc)))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("n_totals, error", [((100_000, 99_000), "DatasetError"), ((1, 1), "ConfigError"),
                                             ((50, 50), "ok")])
def test_ranks_that_read_different_data_or_get_no_shard_all_fail_alike(n_totals, error):
    """A data file missing on one machine (the ranks read different row counts) or more
    ranks than ratings: every rank raises the same one-sentence error."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    procs = [context.Process(target=_disagreeing_rank, args=(r, port, n_totals, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert [kind for _, kind, _ in got] == [error, error]
    assert got[0][2] == got[1][2]  # the same sentence on both ranks
    if error == "DatasetError":
        assert "99,000 to 100,000" in got[0][2]


# -- torchrun end to end ------------------------------------------------------------------
@pytest.mark.slow
def test_torchrun_two_processes_match_one_on_u1(u1, tmp_path):
    """mf under `torchrun --nproc-per-node 2` (DDP, gloo, each rank half of u1's ratings):
    RMSE within 0.01 of one process; rank 0 alone prints (one JSON document)."""
    from movierec.experiments import evaluate_ratings, rating_splits

    train, test = _write(u1.train, tmp_path / "u1_train.csv"), _write(u1.test, tmp_path / "u1_test.csv")
    run = _torchrun(["evaluate", "-m", "mf", "--train", str(train), "--test", str(test), *_PARAMS, "--json",
                     "--quiet"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, run.stdout  # rank 1 printed nothing
    two = json.loads(lines[0])["rmse"]
    splits = rating_splits(None, "files", files=(train, test))
    one = evaluate_ratings("mf", splits, params={"epochs": 8, "dim": 16})
    assert two == pytest.approx(one.to_json()["rmse"], abs=0.01)
    assert two < 0.96


@pytest.mark.slow
def test_torchrun_with_more_processes_than_ratings_writes_nothing(tmp_path):
    """An empty shard: one sentence, exit 1 on every rank, no model folder."""
    data = tmp_path / "one.csv"
    data.write_text("userId,movieId,rating,timestamp\n1,10,4,100\n")
    run = _torchrun(["train", "-m", "mf", "--data", str(data), "--out", str(tmp_path / "model"), "--quiet"], tmp_path)
    assert run.returncode != 0
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert errors == ["error: Only 1 ratings for 2 training processes: a rank would get none; start fewer "
                      "torchrun processes or train on more data."]
    assert "exitcode  : 1" in run.stderr and "Traceback (most recent call last):\n  File \"/" not in run.stdout
    assert not (tmp_path / "model").exists()
