"""Every slow step shows progress and nothing looks stuck (issue 18, item 4).

* The library reports its long loops (torch epochs, ALS/BPR sweeps) as
  `movierec.training.progress` tasks, to whoever installed a reporter, and draws nothing
  itself while one is installed.
* The CLI's one display (`movierec.cli.common.ProgressDisplay`, `Steps`) shows them as
  bars on a terminal, and without one as a heartbeat: a line whenever `interval` seconds
  passed without one (tested with a fake clock, never with wall-clock assertions).
* A cached dataset never shows "fetching"; `models available` loads no torch;
  `scripts/setup.sh` says what it does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.cli.common import Steps, duration, fetch_progress, progress_interval, task_line
from movierec.training.progress import Task, progress_task, reporting
from movierec.training.options import RuntimeOptions

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "movierec"
runner = CliRunner()

#: quick settings of every torch model (the models whose runtime options include `progress`)
TORCH_FAST = {
    "mf": {"dim": 8, "epochs": 2},
    "mf-rank": {"dim": 8, "epochs": 2, "n_neg": 16},
    "neumf": {"dim": 8, "epochs": 2},
    "autorec": {"hidden": 16, "epochs": 2},
    "two-tower": {"dim": 16, "hidden": 32, "epochs": 2, "history_len": 10, "text_dim": 8},
}


class Recorder:
    """A reporter that keeps every event: [(event, label, done, total, unit, info)]."""

    def __init__(self):
        self.events: list[tuple] = []

    def _keep(self, event: str, task: Task) -> None:
        self.events.append((event, task.label, task.done, task.total, task.unit, dict(task.info)))

    def task_started(self, task):
        self._keep("start", task)

    def task_updated(self, task):
        self._keep("update", task)

    def task_finished(self, task):
        self._keep("finish", task)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def plain(monkeypatch):
    """stderr is not a terminal (whatever the environment says)."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "dumb")


@pytest.fixture(scope="module")
def tiny(ml100k):
    """The first 60 users of ML-100K."""
    return ml100k.subset(ml100k.user_idx < 60)


# -- the library reports its loops --------------------------------------------------------
def test_every_torch_model_is_listed_here():
    from movierec.models._torch_base import TorchRecommender
    from movierec.models.registry import available, get_class

    torch_models = {n for n in available() if issubclass(get_class(n), TorchRecommender)}
    assert torch_models == set(TORCH_FAST)


@pytest.mark.parametrize("name", sorted(TORCH_FAST))
def test_torch_models_report_every_epoch_with_loss(name, tiny):
    from movierec.models.registry import create

    rec = Recorder()
    with reporting(rec):
        create(name, **TORCH_FAST[name]).fit(tiny, runtime=RuntimeOptions(device="cpu"))
    starts = [e for e in rec.events if e[0] == "start"]
    assert starts and all(e[1] == f"training {name}" and e[4] == "epoch" for e in starts)
    assert starts[0][3] == 2 and all(1 <= e[3] <= 2 for e in starts)  # the refit runs the best epoch count
    updates = [e for e in rec.events if e[0] == "update"]
    assert updates and all("loss" in e[5] for e in updates)
    assert [e[2] for e in updates][:2] == [1, 2]  # one step per epoch
    assert any("validation" in e[5] for e in updates)  # the early-stopping run validates
    assert sum(e[0] == "finish" for e in rec.events) == len(starts)


def test_no_reporter_no_events_and_the_tqdm_bar_only_without_one(tiny, capsys):
    from movierec.models.registry import create

    create("mf", **TORCH_FAST["mf"]).fit(tiny, runtime=RuntimeOptions(device="cpu", progress=True))
    assert "mf" in capsys.readouterr().err  # the runtime option's own tqdm bar, as before
    with reporting(Recorder()):
        create("mf", **TORCH_FAST["mf"]).fit(tiny, runtime=RuntimeOptions(device="cpu", progress=True))
    assert capsys.readouterr().err == ""  # the installed reporter shows it instead


@pytest.mark.parametrize("name, params, unit, figure", [
    ("als", {"factors": 8, "iterations": 3}, "sweep", None),
    ("bpr", {"factors": 8, "iterations": 3}, "epoch", "train_auc"),
])
def test_als_and_bpr_report_every_sweep(name, params, unit, figure, tiny):
    from movierec.models.registry import create

    rec = Recorder()
    with reporting(rec):
        create(name, **params).fit(tiny)
    assert [e[:5] for e in rec.events if e[0] == "start"] == [("start", f"training {name}", 0, 3, unit)]
    updates = [e for e in rec.events if e[0] == "update"]
    assert [e[2] for e in updates] == [1, 2, 3]
    if figure:
        assert all(0 < e[5][figure] <= 1 for e in updates)
    assert rec.events[-1][0] == "finish"


# -- the heartbeat, on a fake clock ---------------------------------------------------------
def test_duration_and_interval(monkeypatch):
    assert [duration(s) for s in (0, 7.4, 65, 3599, 7380)] == ["0s", "7s", "1m05s", "59m59s", "2h03m"]
    monkeypatch.setenv("MOVIEREC_PROGRESS_INTERVAL", "0.5")
    assert progress_interval() == 0.5
    for bad in ("soon", "-1", "0", "nan"):
        monkeypatch.setenv("MOVIEREC_PROGRESS_INTERVAL", bad)
        assert progress_interval() == 15.0


def test_task_line_says_where_and_how_long():
    task = Task(label="training two-tower", total=20, unit="epoch", done=3, info={"loss": 0.41234, "validation": 0.0612})
    assert task_line(task, 65.0) == ("training two-tower: 3/20 epochs, loss 0.4123, validation 0.0612, "
                                     "1m05s elapsed, about 6m08s left")
    assert task_line(Task(label="training ease on ml-100k"), 31.0) == "training ease on ml-100k: 31s elapsed"


def test_a_long_step_prints_a_line_every_interval(plain, capsys):
    clock = FakeClock()
    with Steps("training mf on ml-100k (100,000 ratings)", None, interval=15, clock=clock, background=False) as steps:
        assert not steps.bars
        heartbeat = steps.heartbeat
        clock.now += 14
        assert not heartbeat.tick()  # a short step prints nothing more
        with progress_task("training mf", total=20, unit="epoch") as task:
            task.advance(loss=0.8123, validation=0.9214)
            clock.now += 1
            assert heartbeat.tick()
            assert not heartbeat.tick()  # not twice in the same interval
            clock.now += 14.5
            assert not heartbeat.tick()
            clock.now += 0.5
            assert heartbeat.tick()
    err = capsys.readouterr().err.splitlines()
    assert err == ["training mf on ml-100k (100,000 ratings)",
                   "training mf: 1/20 epochs, loss 0.8123, validation 0.9214, 1s elapsed, about 19s left",
                   "training mf: 1/20 epochs, loss 0.8123, validation 0.9214, 16s elapsed, about 5m04s left"]


def test_the_line_names_the_outer_position_and_a_step_line_resets_the_clock(plain, capsys):
    clock = FakeClock()
    with Steps("tuning mf", 20, unit="trial", interval=15, clock=clock, background=False) as steps:
        for _ in range(3):
            steps.advance()
        with progress_task("training mf", total=60, unit="epoch") as task:
            task.advance(4, loss=0.9)
            clock.now += 20
            assert steps.heartbeat.tick()
        clock.now += 10
        steps.start("fitting the last one")  # a line of its own: the next heartbeat is 15 s away
        clock.now += 10
        assert not steps.heartbeat.tick()  # 20 s after the last heartbeat, 10 s after the line
        clock.now += 5
        assert steps.heartbeat.tick()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "tuning mf 3/20 trials > training mf: 4/60 epochs, loss 0.9, 20s elapsed, about 4m40s left"
    assert err[1:] == ["fitting the last one", "tuning mf: fitting the last one: 3/20 trials, 45s elapsed, "
                                               "about 4m15s left"]


def test_quiet_shows_nothing_and_silences_library_bars(plain, capsys, tiny):
    from movierec.models.registry import create

    clock = FakeClock()
    with Steps("training mf", None, quiet=True, interval=1, clock=clock, background=False) as steps:
        assert steps.heartbeat is None
        create("mf", **TORCH_FAST["mf"]).fit(tiny, runtime=RuntimeOptions(device="cpu", progress=True))
        steps.start("a step")
        steps.note("a note")
    assert capsys.readouterr().err == ""


def test_the_background_heartbeat_ticks_by_itself(plain, capsys):
    seen = ""
    with Steps("waiting", 1, interval=0.01) as steps:
        for _ in range(1000):  # the thread's first line comes after 0.01 s; give up after ~10 s
            seen += capsys.readouterr().err
            if seen:
                break
            steps.heartbeat._stop.wait(0.01)
    assert seen.startswith("waiting: 0/1 steps, 0s elapsed")
    assert steps.heartbeat._thread is None  # stopped with the display


# -- bars on a terminal ---------------------------------------------------------------------
def test_bars_show_library_loops_under_the_steps(monkeypatch, capsys, tiny):
    from movierec.models.registry import create

    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with Steps("compare", 2) as steps:
        assert steps.bars and steps.heartbeat is None
        steps.start("fitting mf ...")
        create("mf", **TORCH_FAST["mf"]).fit(tiny, runtime=RuntimeOptions(device="cpu"))
        steps.start("fitting als ...")
        create("als", factors=8, iterations=3).fit(tiny)
    err = capsys.readouterr().err
    assert "━" in err and "compare: fitting mf ..." in err
    assert "training mf" in err and "/2 epochs" in err and "loss" in err and "validation" in err
    assert "training als" in err and "3/3 sweeps" in err


def test_a_display_inside_another_shows_through_it(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with Steps("compare", 2) as steps, fetch_progress("ml-100k") as download:
        download(0, 4_000_000)
        assert steps.describe().startswith("compare 0/2 steps > fetching ml-100k: 0.0/4.0 MB")  # one display
        download(4_000_000, 4_000_000)
        assert "> preparing ml-100k" in steps.describe()
    assert steps.describe() is None  # every task is over
    err = capsys.readouterr().err
    assert "fetching ml-100k" in err and "preparing ml-100k" in err


@pytest.mark.parametrize("model, params, unit", [("mf", ["-p", "dim=8", "-p", "epochs=2"], "epochs"),
                                                 ("als", ["-p", "factors=8", "-p", "iterations=3"], "sweeps")])
def test_train_on_a_terminal_draws_epoch_bars_and_no_fetching(monkeypatch, ml100k, tmp_path, model, params, unit):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    result = runner.invoke(app, ["train", "-m", model, "-d", "ml-100k", *params, "--out", str(tmp_path / "m"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert f"training {model}" in result.stderr and unit in result.stderr and "━" in result.stderr
    assert "fetching" not in result.stderr  # ml-100k is cached (the session fixture fetched it)
    assert json.loads(result.stdout)["model"] == model


def test_fetch_shows_a_bar_only_while_downloading(monkeypatch, tmp_path):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache"))
    first = runner.invoke(app, ["data", "fetch", "ml-100k"])
    assert first.exit_code == 0, first.output
    assert "fetching ml-100k" in first.stderr and "MB" in first.stderr
    again = runner.invoke(app, ["data", "fetch", "ml-100k"])
    assert again.exit_code == 0 and again.stderr == ""  # cached: no bar at all, not even "0/? bytes"


def test_compare_shows_its_download_under_its_steps(monkeypatch, tmp_path):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["compare", "-d", "ml-100k", "--models", "random,pop", "--json"])
    assert result.exit_code == 0, result.output
    assert "fetching ml-100k" in result.stderr and "compare" in result.stderr
    assert set(json.loads(result.stdout)["models"]) == {"random", "pop"}


# -- without a terminal: the CLI end to end -------------------------------------------------
def test_cli_training_prints_heartbeat_lines_and_clean_json(tmp_path):
    env = {**os.environ, "MOVIEREC_PROGRESS_INTERVAL": "0.02"}
    env.pop("TTY_COMPATIBLE", None)
    env.pop("FORCE_COLOR", None)
    args = [str(SCRIPT), "train", "-m", "mf", "-d", "ml-100k", "-p", "dim=8", "-p", "epochs=3", "--device", "cpu",
            "--json"]
    proc = subprocess.run([*args, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert proc.stdout.strip().count("\n") == 0 and doc["model"] == "mf"
    lines = proc.stderr.splitlines()
    assert lines[0] == "training mf on ml-100k (100,000 ratings)"
    epochs = [ln for ln in lines if ln.startswith("training mf: ") and "/3 epochs, loss " in ln]
    assert epochs and all(" elapsed" in ln for ln in epochs)
    quiet = subprocess.run([*args, "--out", str(tmp_path / "b"), "--quiet"], capture_output=True, text=True,
                           env=env, timeout=600)
    assert quiet.returncode == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["model"] == "mf"


# -- `models available` without torch -------------------------------------------------------
PROBE = """
import json, sys
from movierec.cli import main
sys.argv = ["movierec", "models", "available", "--json"]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "implicit", "optuna", "sklearn", "matplotlib") if m in sys.modules)
print("PROBE " + json.dumps(heavy))
"""


def test_models_available_imports_no_model_class_nor_torch():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MOVIEREC_DEBUG": "1"})
    out, probe = proc.stdout.rsplit("PROBE ", 1)
    assert json.loads(probe) == [], proc.stderr
    listed = {m["name"]: m for m in json.loads(out)["models"]}
    from movierec.models.registry import available

    assert sorted(listed) == available()
    assert listed["neumf"]["class"] == "movierec.models.neumf:NeuMF" and listed["mf"]["kind"] == "rating"
    assert listed["two-tower"]["tunable"]["lr"] == {"type": "float", "low": 0.001, "high": 0.01, "log": True,
                                                     "describe": "float in [0.001, 0.01] (log)"}


def test_the_models_metadata_is_what_the_classes_declare():
    from movierec.models.metadata import BUILT_IN, class_info, entry_source
    from movierec.models.registry import available, get_class

    assert sorted(BUILT_IN) == available()
    for name in available():
        actual = class_info(name, get_class(name))
        assert BUILT_IN[name] == actual, (f"movierec/models/metadata.py is out of date for {name!r}; "
                                          f"its entry should read:\n{entry_source(actual)}")


def test_a_model_registered_at_run_time_is_read_from_its_class():
    from movierec.models import registry

    registry.register("pop-copy", "movierec.models.baselines:PopularRecommender")
    try:
        info = registry.model_info("pop-copy")
        assert info.name == "pop-copy" and info.target == "movierec.models.baselines:PopularRecommender"
        assert info.params == {"min_rating": None} and info.kind == "ranking"
    finally:
        registry._MODELS.pop("pop-copy")


# -- scripts/setup.sh says what it does -----------------------------------------------------
FAKE_PYTHON = """#!/usr/bin/env bash
# records its arguments; `-m venv DIR` makes DIR/bin/python (this script again)
echo "$*" >> "$CALLS"
if [ "$1" = "--version" ]; then echo "Python 3.11.0"; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
exit 0
"""


def _project_copy(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    for name in ("pyproject.toml", "constraints.txt"):
        (root / name).write_text("")
    fake = tmp_path / "python3.11"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return root, {**os.environ, "PYTHON": str(fake), "CALLS": str(tmp_path / "calls")}


def test_setup_says_each_step_on_stderr(tmp_path):
    root, env = _project_copy(tmp_path)
    first = subprocess.run(["bash", "scripts/setup.sh", "dev"], cwd=root, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert first.stderr.splitlines() == [
        "setup: creating .venv with Python 3.11.0",
        "setup: updating pip in .venv",
        "setup: installing movierec[dev] (editable) with versions pinned by constraints.txt (not installed with "
        "these extras yet); the first time takes minutes",
        "setup: checking that movierec and torch import",
        "setup: done: .venv has movierec[dev]",
    ]
    assert "-m pip install --quiet --disable-pip-version-check -c constraints.txt -e .[dev]" in (
        tmp_path / "calls").read_text()
    again = subprocess.run(["bash", "scripts/setup.sh", "dev"], cwd=root, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stdout == ""
    assert again.stderr == ("setup: already set up: .venv has movierec[dev] (pyproject.toml and constraints.txt "
                            "unchanged since)\n")
    os.utime(root / "constraints.txt", (2**31, 2**31))  # newer than the stamp
    changed = subprocess.run(["bash", "scripts/setup.sh", "dev"], cwd=root, capture_output=True, text=True, env=env)
    assert "(constraints.txt changed since the last install)" in changed.stderr
    assert "creating .venv" not in changed.stderr
