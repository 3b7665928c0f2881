"""Every registered model at MovieLens-25M scale: fit, evaluate, bundle and serve, with their costs.

    .venv/bin/python benchmarks/scale.py --size 1m                       # every registered model
    .venv/bin/python benchmarks/scale.py --size 25m --models als,ease    # some of them
    .venv/bin/python benchmarks/scale.py --size 25m --models ease --fresh   # measure again

For each size the synthetic ratings file is written once if missing (`movierec data synth`,
seed 0, its defaults otherwise: planted taste, MovieLens-like skew, a known noise floor) into
`--workdir` (default `.movierec-cache/scale/synth-SIZE/ratings.csv`), or taken from `--data
FILE` (a file `movierec data synth` wrote, with its `.meta.json`, of the size's shape). The
sizes keep ML-25M's shape scaled down:

* ``25m``: 162,541 users x 59,047 movies x 25,000,095 ratings (ML-25M's counts);
* ``5m``: 32,508 users (ML-25M's 154 ratings per user) x 14,793 movies (the geometric mean
  of the 1m and 25m catalogs: catalogs grow more slowly than the number of ratings) x
  5,000,019 ratings (a fifth of 25m);
* ``1m``: ML-1M's 6,040 users x 3,706 movies x 1,000,209 ratings;
* ``tiny``: 1,000 x 300 x 20,000, for the tests.

Every model runs in its own child process (this script in `--child` mode), one after another:

1. load the ratings file (`movierec.data.load_ratings`), timed;
2. split it with the project's ``temporal`` protocol in its rating-evaluation form (one global
   cut in time: the earliest 80% of the ratings train, the latest 20% test, no validation
   part), timed; ranking is measured on the test users who have training ratings (the
   others have no history to rank from), RMSE on every test rating (rating models answer
   new users from their biases; `movierec evaluate` measures RMSE the same way).
   `--protocol leave-last` (and `--holdout`) uses another protocol, in a table of its own
   ("25m leave-last"): in the synthetic sets a user rates within a short window (a median of
   two days), so most test-period users of a global cut are new and the temporal split ranks
   few users (18 of 1,159 at 1m, about 260 expected at 25m), where leave-last tests every user;
3. ask the model whether it fits in memory (`Recommender.check_fits`, against
   `$MOVIEREC_MEMORY_LIMIT`, 20G unless set): a refused model becomes a row with its sentence;
4. fit it (default hyperparameters, seed 42, except the size's `SIZE_PARAMS` and any
   `--param MODEL:KEY=VALUE`; the row records them and the table shows them), timed; a
   model trained in epochs records how many it ran and their mean seconds;
5. evaluate it with full ranking of every movie (training items excluded) at K = 10: NDCG@10
   and HR@10 (relevance threshold "auto"), and for rating models the RMSE (see 2), next to
   the data's noise-only RMSE floor (`rmse_floor` of the meta.json), timed;
6. save a bundle (`save_bundle`), timed, and its size on disk.

The peak RSS of each stage is the child's VmHWM, reset at the start of the stage
(`/proc/self/clear_refs`), so it includes what earlier stages left in memory (the data);
the child's overall peak is its `ru_maxrss`. Then this process starts a real server on the
bundle (`movierec serve --model-dir BUNDLE --cache-size 0`, the answer memo off, 1 worker,
1 compute thread) and measures `/recommend?user_id=U&k=10` for `--requests` random known
users (users with training ratings, seeded) with a simple client: one keep-alive connection,
one request at a time, after 20 warm-up requests; p50/p99 of the client-side latency (no
load generator: wrk's throughput runs are `benchmarks/serve_load.py`'s); the server's peak
RSS is its VmHWM.

Limits: each model (child and server together) gets `--timeout-min` minutes (45) and
`--memory-limit` bytes of RSS (20G, also the child's `MOVIEREC_MEMORY_LIMIT` unless that is
set): a watchdog polls the RSS of the child's process tree every 0.2 s and kills it above the
limit (an address-space rlimit would refuse healthy fits: torch and BLAS reserve far more
virtual memory than they touch). A killed or failed model becomes a row saying so.

Results go to `benchmarks/results/scale.json` (`--results`), one row per (size, model),
written as each model finishes with the machine facts, the load average at its start and
end, the date and the command; a model already there is skipped unless `--fresh`, so the
table can be run one model at a time and resumed. `benchmarks/render.py` renders it into
BENCHMARKS.md (region ``figures:scale``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import scale_settings, command_line, default_out, machine_facts  # noqa: E402

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]

#: size name -> (users, movies, ratings); see the module docstring
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (1_000, 300, 20_000),
    "1m": (6_040, 3_706, 1_000_209),
    "5m": (32_508, 14_793, 5_000_019),
    "25m": (162_541, 59_047, 25_000_095),
}
#: the sizes of the table in BENCHMARKS.md, in order
TABLE_SIZES = ("1m", "5m", "25m")
K = 10
SEED = 42
DEFAULT_PROTOCOL = "temporal"
WARMUP_REQUESTS = 20
GIB = 2**30

#: hyperparameters a size's table uses instead of the defaults (each row records them).
#: At 25m the torch ranking models' default epoch budgets (30-40 epochs, early stopping on
#: a held-out share, then a refit on everything: about twice that) would take hours on two
#: cores, past the 45-minute limit: they run a fixed, small number of epochs on all the
#: data (`patience` 0: no hold-out, no refit), chosen from the epoch times measured at 1m
#: (two-tower 34 s, neumf 24 s, mf-rank 10 s) times 25 to need 13-30 minutes each; the
#: table's quality for them is that budget's, not the model's best. Steps that update whole
#: ID tables cost more at 25m than that (two-tower's 2 epochs ran past 45 minutes). `als-spark` in `local[2]` is one JVM,
#: the driver, holding the ratings and ALS's blocks: its default 1 GB heap is for small sets.
SIZE_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "25m": {
        "als-spark": {"driver_memory": "6g"},
        "two-tower": {"epochs": 2, "patience": 0},
        "neumf": {"epochs": 1, "patience": 0},
        "mf-rank": {"epochs": 3, "patience": 0},
    },
}


def log(message: str) -> None:
    print(message, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def parse_size(text: str) -> int:
    """Bytes from '20G', '512M', '3000' (binary units, read as MOVIEREC_MEMORY_LIMIT is)."""
    from movierec.resources import parse_bytes

    return parse_bytes(text)


# ------------------------------------------------------------------------------ memory


def _status_kib(pid: int | str, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), in KiB; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        out: list[int] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        return out
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def tree_rss(pid: int) -> int:
    """Bytes of RSS of a process and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _status_kib(p, "VmRSS") * 1024
        stack += _children(p)
    return total


def reset_peak() -> bool:
    """Reset this process's VmHWM (peak RSS) to its current RSS; False where Linux refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def stage_peak() -> int:
    """Bytes of this process's peak RSS since the last `reset_peak` (VmHWM), else ru_maxrss."""
    hwm = _status_kib("self", "VmHWM")
    return hwm * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Watched:
    """A process started in its own session, killed (with its descendants) above a memory
    limit or past a deadline; `peak` is the largest tree RSS seen."""

    def __init__(self, cmd: list[str], env: dict[str, str], limit: int, deadline: float, log_path: Path):
        self.limit, self.deadline, self.peak, self.killed = limit, deadline, 0, None
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def poll(self) -> bool:
        """Check the limits once; True while the process runs."""
        if self.proc.poll() is not None:
            return False
        rss = tree_rss(self.proc.pid)
        self.peak = max(self.peak, rss)
        if rss > self.limit:
            self.kill("memory")
            return False
        if time.monotonic() > self.deadline:
            self.kill("timeout")
            return False
        return True

    def wait(self, interval: float = 0.2) -> int:
        """Poll until the process ends (or is killed); its exit status."""
        try:
            while self.poll():
                time.sleep(interval)
        except BaseException:  # Ctrl-C: the process is in its own session, stop it too
            self.kill()
            raise
        code = self.proc.wait()
        self.log_file.close()
        return code

    def kill(self, why: str | None = None) -> None:
        if why and self.killed is None:
            self.killed = why
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log_file.close()


# ------------------------------------------------------------------------------ data


def ensure_data(size: str, workdir: Path, data: Path | None) -> tuple[Path, dict]:
    """The ratings file of `size` and its metadata, written with `movierec data synth` if missing."""
    users, items, ratings = SIZES[size]
    path = data if data is not None else workdir / f"synth-{size}" / "ratings.csv"
    meta_path = Path(f"{path}.meta.json")
    if not (path.is_file() and meta_path.is_file()):
        if data is not None:
            raise SystemExit(f"--data {path} has no {meta_path.name} beside it; give a file `movierec data synth` wrote.")
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"writing the {size} synthetic set ({users:,} users x {items:,} movies x {ratings:,} ratings) to {path}")
        movierec = Path(sys.executable).with_name("movierec")
        subprocess.run([str(movierec), "data", "synth", "--users", str(users), "--items", str(items),
                        "--ratings", str(ratings), "--seed", "0", "--out", str(path)], check=True)
    meta = json.loads(meta_path.read_text())
    got = (meta["n_users"], meta["n_items"], meta["n_ratings"])
    if got != (users, items, ratings):
        raise SystemExit(f"{path} holds {got[0]:,} users x {got[1]:,} movies x {got[2]:,} ratings, not the {size} "
                         f"size's {users:,} x {items:,} x {ratings:,}; give another --data or --workdir.")
    return path, meta


# ------------------------------------------------------------------------------ child


def child(args: argparse.Namespace) -> int:
    """One model's load, split, fit, evaluation and bundle; events appended to `--report`."""
    report = Path(args.report)

    def emit(event: dict[str, Any]) -> None:
        with report.open("a") as fh:
            fh.write(json.dumps(event) + "\n")

    def stage(name: str, fn):
        emit({"start": name})
        reset_peak()
        t0 = time.perf_counter()
        value = fn()
        emit({"stage": name, "seconds": time.perf_counter() - t0, "peak_rss": stage_peak()})
        return value

    import numpy as np

    from movierec import errors
    from movierec.artifacts.bundle import Bundle, save_bundle
    from movierec.data import load_ratings
    from movierec.data.split import drop_unseen
    from movierec.evaluation.protocols import get_protocol, resolve_relevance_threshold
    from movierec.evaluation.runner import evaluate_ranking, evaluate_ratings
    from movierec.experiments.models import build_model

    ds = stage("load", lambda: load_ratings(args.data))
    # the rating-evaluation form of the protocol (no validation part, unseen test users kept:
    # rating models answer them from biases); ranking drops them (no history to rank from)
    protocol = get_protocol(args.protocol)
    split = stage("split", lambda: protocol.splits(ds, args.holdout, SEED, validation=False,
                                                   drop_unseen_test=False)[0])
    history = split.train
    ranked = drop_unseen(split)
    ds = None  # the parts are copies: free the whole set before fitting
    emit({"split": {"protocol": protocol.name, "label": protocol.label(split.info),
                    "train": int(history.n_ratings), "test": int(split.test.n_ratings),
                    "test_users": int(len(np.unique(split.test.user_idx))),
                    "test_users_with_history": int(len(np.unique(ranked.test.user_idx))),
                    "test_start": split.info.get("test_start")}})
    model = build_model(args.model, json.loads(args.params or "{}"), SEED)
    refusal = getattr(errors, "ResourceError", None)
    check = getattr(model, "check_fits", None)
    try:
        if check is not None:
            check(history.n_users, history.n_items, history.n_ratings)
        stage("fit", lambda: model.fit(history))
        if model.history_ is not None and model.history_.records:
            seconds = [r.get("seconds") for r in model.history_.records if r.get("seconds") is not None]
            emit({"training": {"epochs": len(model.history_.records), "best_epoch": model.history_.best_epoch,
                               "stopped_early": model.history_.stopped_early,
                               "epoch_s": sum(seconds) / len(seconds) if seconds else None}})
    except Exception as exc:  # a refusal is a row; so is any other failure (the table goes on)
        if refusal is not None and isinstance(exc, refusal):
            emit({"refused": str(exc)})
            return 0
        raise
    threshold = resolve_relevance_threshold("auto", history)

    def evaluate() -> dict[str, Any]:
        t0 = time.perf_counter()
        ranking = evaluate_ranking(model, history, ranked.test, ks=(K,), metrics=("ndcg", "hr"),
                                   relevance_threshold=threshold)
        out = {f"ndcg@{K}": ranking.summary[f"ndcg@{K}"], f"hr@{K}": ranking.summary[f"hr@{K}"],
               "evaluated_users": ranking.info["n_evaluated_users"], "ranking_s": time.perf_counter() - t0,
               "relevance_threshold": threshold, "topk": "torch.topk" if "torch" in sys.modules else "numpy"}
        if model.capabilities.predicts_ratings:
            t1 = time.perf_counter()
            out["rmse"] = evaluate_ratings(model, split.test)["rmse"]
            out["rating_s"] = time.perf_counter() - t1
        return out

    emit({"quality": stage("eval", evaluate)})
    bundle_dir = Path(args.bundle)
    stage("save", lambda: save_bundle(Bundle.from_model(model, history), bundle_dir, overwrite=True))
    emit({"bundle_bytes": sum(p.stat().st_size for p in bundle_dir.rglob("*") if p.is_file())})
    known = history.users.raw(np.flatnonzero(history.user_counts() > 0))
    rng = np.random.default_rng(SEED)
    emit({"users": [u.item() if hasattr(u, "item") else u for u in rng.choice(known, args.requests + WARMUP_REQUESTS)]})
    emit({"child_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
    return 0


def read_events(path: Path) -> dict[str, Any]:
    """The child's events folded into one dict: stage seconds and peaks, the last stage started."""
    out: dict[str, Any] = {"seconds": {}, "peak_rss": {}}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if "start" in event:
            out["running"] = event["start"]
        elif "stage" in event:
            out["seconds"][event["stage"]] = event["seconds"]
            out["peak_rss"][event["stage"]] = event["peak_rss"]
            out.pop("running", None)
        else:
            out.update(event)
    return out


# ------------------------------------------------------------------------------ serving


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_serving(bundle: Path, users: list, limit: int, deadline: float, workdir: Path, env: dict[str, str],
                    requests: int) -> dict[str, Any]:
    """Start `movierec serve` on the bundle and time /recommend for each user, one at a time."""
    port = _free_port()
    movierec = Path(sys.executable).with_name("movierec")
    cmd = [str(movierec), "serve", "--model-dir", str(bundle), "--cache-size", "0", "--port", str(port),
           "--feedback-db", str(workdir / "feedback.sqlite3"), "--watch-interval", "0", "--threads", "1"]
    server = Watched(cmd, env, limit, deadline, workdir / "server.log")
    t0 = time.perf_counter()
    out: dict[str, Any] = {"client": "one keep-alive connection, sequential requests (http.client)"}
    conn = None
    try:
        while True:
            if not server.poll():
                return {**out, "error": _server_failure(server, workdir)}
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/health")
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    break
            except (OSError, http.client.HTTPException):
                conn = None
            time.sleep(0.2)
        out["start_s"] = time.perf_counter() - t0
        latencies = []
        for n, user in enumerate(users):
            if not server.poll():
                return {**out, "error": _server_failure(server, workdir)}
            t1 = time.perf_counter()
            try:
                conn.request("GET", f"/recommend?user_id={quote(str(user))}&k={K}")
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                return {**out, "error": f"/recommend did not answer ({type(exc).__name__}: {exc})"}
            if resp.status != 200:
                return {**out, "error": f"/recommend answered {resp.status}: {body[:200].decode(errors='replace')}"}
            if n >= WARMUP_REQUESTS:
                latencies.append(time.perf_counter() - t1)
        latencies.sort()
        out.update(requests=len(latencies), p50_ms=1e3 * latencies[len(latencies) // 2],
                   p99_ms=1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                   peak_rss=_status_kib(server.proc.pid, "VmHWM") * 1024)
        out["peak_rss"] = max(out["peak_rss"], server.peak)
        return out
    finally:
        if conn is not None:
            conn.close()
        server.kill()


def _server_failure(server: Watched, workdir: Path) -> str:
    if server.killed == "memory":
        return f"the server went over the memory limit ({server.peak / GIB:.1f} GiB)"
    if server.killed == "timeout":
        return "the server ran past the time limit"
    text = (workdir / "server.log").read_text(errors="replace").strip().splitlines()
    return f"the server exited: {text[-1] if text else 'no output'}"


# ------------------------------------------------------------------------------ one model


def parse_overrides(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """`--param MODEL:KEY=VALUE` (repeatable) -> {model: {key: value}}; ValueError with a sentence."""
    from movierec.cli.common import parse_value

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        model, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not (sep and eq and model.strip() and key.strip()):
            raise ValueError(f"--param takes MODEL:KEY=VALUE (e.g. two-tower:epochs=3), got {item!r}.")
        out.setdefault(model.strip(), {})[key.strip()] = parse_value(value)
    return out


def model_overrides(name: str, size: str, given: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The hyperparameters a model runs with at a size beyond its defaults: the size's
    `SIZE_PARAMS`, then `--param` on top."""
    return {**SIZE_PARAMS.get(size, {}).get(name, {}), **given.get(name, {})}


def run_model(name: str, size: str, data: Path, meta: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one model in a child process and a server; the results row."""
    limit = parse_size(args.memory_limit)
    timeout_s = args.timeout_min * 60
    row: dict[str, Any] = {"model": name, "date": _dt.date.today().isoformat(),
                           "started": _dt.datetime.now(_dt.timezone.utc).isoformat(), "command": command_line(),
                           "machine": machine_facts(), "loadavg_start": load_average(),
                           "memory_limit": limit, "timeout_min": args.timeout_min}
    work = Path(tempfile.mkdtemp(prefix=f"scale-{size}-{name}-", dir=args.workdir))
    env = dict(os.environ)
    env.setdefault("MOVIEREC_MEMORY_LIMIT", args.memory_limit)
    row["movierec_memory_limit"] = env["MOVIEREC_MEMORY_LIMIT"]
    report, bundle = work / "events.jsonl", work / "bundle"
    params = model_overrides(name, size, args.param)
    if params:
        row["params"] = params
    cmd = [sys.executable, str(HERE), "--child", "--model", name, "--data", str(data), "--report", str(report),
           "--bundle", str(bundle), "--requests", str(args.requests), "--protocol", args.protocol,
           "--params", json.dumps(params)]
    if args.holdout is not None:
        cmd += ["--holdout", str(args.holdout)]
    deadline = time.monotonic() + timeout_s
    started = time.perf_counter()
    proc = Watched(cmd, env, limit, deadline, work / "child.log")
    code = proc.wait()
    ev = read_events(report)
    row["seconds"] = {k: round(v, 3) for k, v in ev["seconds"].items()}
    row["peak_rss"] = dict(ev["peak_rss"])
    row["peak_rss"]["child"] = max(ev.get("child_peak_rss", 0), proc.peak)
    for key in ("split", "quality", "bundle_bytes", "training"):
        if key in ev:
            row[key] = ev[key]
    if "refused" in ev:
        row.update(status="refused", message=ev["refused"])
    elif proc.killed == "timeout":
        row.update(status="timed out", message=f"timed out at {args.timeout_min:g} min (during {ev.get('running', '?')})")
    elif proc.killed == "memory":
        row.update(status="over memory", message=f"killed above the {limit / GIB:g} GiB limit "
                                                 f"(during {ev.get('running', '?')}, {proc.peak / GIB:.1f} GiB RSS)")
    elif row["peak_rss"]["child"] > limit:  # between two of the watchdog's looks
        row.update(status="over memory", message=f"peaked at {row['peak_rss']['child'] / GIB:.1f} GiB, above the "
                                                 f"{limit / GIB:g} GiB limit")
    elif code != 0 or "users" not in ev:
        tail = (work / "child.log").read_text(errors="replace").strip().splitlines()
        row.update(status="failed", message=f"failed during {ev.get('running', '?')}: "
                                            f"{tail[-1] if tail else f'exit status {code}'}")
    else:
        serve = measure_serving(bundle, ev["users"], limit, deadline, work, env, args.requests)
        row["serve"] = serve
        row["peak_rss"]["server"] = serve.get("peak_rss")
        if "error" in serve:
            row.update(status="failed", message=f"serving failed: {serve['error']}")
        elif serve["peak_rss"] > limit:
            row.update(status="over memory", message=f"the server peaked at {serve['peak_rss'] / GIB:.1f} GiB, above "
                                                     f"the {limit / GIB:g} GiB limit")
        else:
            row["status"] = "ok"
    row["total_s"] = round(time.perf_counter() - started, 1)
    row["loadavg_end"] = load_average()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return row


# ------------------------------------------------------------------------------ results


def load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {"benchmark": "scale", "source": "measured", "figures": {"sizes": {}}}


def _finite(obj: Any) -> Any:
    """NaN and infinities -> None (strict JSON), recursively."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_results(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically (a killed run never leaves half a file)."""
    doc.update(command=command_line(), date=_dt.date.today().isoformat(), machine=machine_facts())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def table_key(size: str, protocol: str, holdout: float | None) -> str:
    """The results key of a size's table: the size ("25m") under the default protocol,
    else "25m leave-last" or "25m leave-last 0.2" (tables of other protocols are apart)."""
    if protocol == DEFAULT_PROTOCOL and holdout is None:
        return size
    return " ".join([size, protocol] + ([f"{holdout:g}"] if holdout is not None else []))


def size_entry(doc: dict[str, Any], key: str, size: str, meta: dict, registered: list[str]) -> dict[str, Any]:
    users, items, ratings = SIZES[size]
    entry = doc["figures"]["sizes"].setdefault(key, {"rows": {}})
    entry.update(users=users, items=items, ratings=ratings, rmse_floor=meta["rmse_floor"], noise=meta["noise"],
                 registered=registered)
    return entry


def fmt_row(row: dict[str, Any], floor: float) -> str:
    if row.get("status") != "ok":
        return f"{row['model']:<12} {row.get('status')}: {row.get('message')}"
    q, s, rss = row["quality"], row["seconds"], row["peak_rss"]
    rmse = f"RMSE {q['rmse']:.4f} ({q['rmse'] / floor:.2f}x floor)" if q.get("rmse") is not None else ""
    ndcg, hr = (f"{q[key]:.4f}" if q.get(key) is not None else "n/a" for key in (f"ndcg@{K}", f"hr@{K}"))
    return (f"{row['model']:<12} fit {s.get('fit', 0):8.1f}s  eval {s.get('eval', 0):7.1f}s  "
            f"peak {max(v for v in rss.values() if v) / GIB:5.2f} GiB  bundle {row['bundle_bytes'] / 1e6:8.1f} MB  "
            f"p50/p99 {row['serve']['p50_ms']:.1f}/{row['serve']['p99_ms']:.1f} ms  "
            f"NDCG@10 {ndcg}  HR@10 {hr} ({q['evaluated_users']:,} users)  {rmse}{scale_settings(row)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), help="the data size (see the module docstring)")
    ap.add_argument("--models", help="comma-separated registered model names (default: every registered model)")
    ap.add_argument("--fresh", action="store_true", help="measure models already in the results again")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".movierec-cache" / "scale",
                    help="data cache and scratch folder")
    ap.add_argument("--data", type=Path, help="an existing `movierec data synth` file of the size's shape")
    ap.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                    help="evaluation protocol (default temporal; another one is a table of its own)")
    ap.add_argument("--holdout", type=float, help="the protocol's test amount (default: the protocol's)")
    ap.add_argument("--results", type=Path, default=default_out("scale"), help="results file")
    ap.add_argument("--memory-limit", default="20G", help="RSS limit per model (and MOVIEREC_MEMORY_LIMIT)")
    ap.add_argument("--timeout-min", type=float, default=45.0, help="minutes per model")
    ap.add_argument("--requests", type=int, default=300, help="/recommend requests timed per model")
    ap.add_argument("--param", action="append", metavar="MODEL:KEY=VALUE",
                    help="a hyperparameter for one model (repeatable; beyond the size's SIZE_PARAMS)")
    ap.add_argument("--keep", action="store_true", help="keep each model's scratch folder (bundle, logs)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    ap.add_argument("--bundle", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.size is None:
        ap.error("--size is required")
    from movierec.models.registry import available

    registered = available()
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else registered
    unknown = [n for n in names if n not in registered]
    if unknown:
        print(f"Unknown model(s) {', '.join(unknown)}; choose from: {', '.join(registered)}.", file=sys.stderr)
        return 1
    from movierec.evaluation.protocols import available_protocols

    if args.protocol not in available_protocols():
        print(f"Unknown protocol {args.protocol!r}; choose from: {', '.join(available_protocols())}.", file=sys.stderr)
        return 1
    try:
        parse_size(args.memory_limit)
    except ValueError:
        print(f"--memory-limit must be a size such as 20G, got {args.memory_limit!r}.", file=sys.stderr)
        return 1
    from movierec.errors import ConfigError

    try:
        given = parse_overrides(args.param)
        stray = sorted(set(given) - set(names))
        if stray:
            raise ValueError(f"--param names {', '.join(stray)}, not among the models measured ({', '.join(names)}).")
        from movierec.experiments.models import build_model

        for name in names:  # a misspelt hyperparameter is one sentence before any data is written
            build_model(name, model_overrides(name, args.size, given), SEED)
    except (ValueError, ConfigError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    args.param = given
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, meta = ensure_data(args.size, args.workdir, args.data)
    doc = load_results(args.results)
    key = table_key(args.size, args.protocol, args.holdout)
    entry = size_entry(doc, key, args.size, meta, registered)
    for name in names:
        if name in entry["rows"] and not args.fresh:
            log(f"{name}: already measured at {key} ({entry['rows'][name]['date']}); --fresh to measure again")
            continue
        log(f"{name}: measuring at {key} ...")
        row = run_model(name, args.size, data, meta, args)
        entry["rows"][name] = row
        save_results(args.results, doc)
        log("  " + fmt_row(row, meta["rmse_floor"]))
    log(f"\n{key}: {entry['users']:,} users x {entry['items']:,} movies x {entry['ratings']:,} ratings; "
        f"noise-only RMSE floor {meta['rmse_floor']:.4f}")
    for row in entry["rows"].values():
        log("  " + fmt_row(row, meta["rmse_floor"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
