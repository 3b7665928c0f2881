"""Shared CLI plumbing: one vocabulary of options, --dataset/--data loading, --param parsing,
the --protocol help (from the protocol registry), progress bars and JSON output.

Progress goes to stderr, through one display (`ProgressDisplay`; `Steps` and
`fetch_progress` are made of it) fed by the commands' steps and by the library's own
loops (`movierec.training.progress`: epochs, sweeps, downloads). When stderr is a
terminal (rich's detection, so `TTY_COMPATIBLE=1` or `FORCE_COLOR=1` force it) it draws
bars; otherwise a step that lasts prints a short line every 15 seconds
($MOVIEREC_PROGRESS_INTERVAL); `--quiet` silences both. stdout keeps only the answer (a
table, or one JSON object with `--json`).
No heavy module (numpy, pandas, torch, the models) is imported here at start-up.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape

from movierec.errors import ConfigError, MovierecError
from movierec.evaluation.protocols import available_protocols, get_protocol
from movierec.jsonable import json_default_finite
from movierec.training.progress import Task

console = Console(stderr=True)
out = Console()

#: the `movierec` command; command modules add their commands to it (or to `data_app`)
app = typer.Typer(
    name="movierec",
    help="Build, evaluate and serve movie recommenders on MovieLens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, describe and synthesise rating data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def bars_on(quiet: bool = False) -> bool:
    """Whether progress bars are drawn: stderr is a terminal and --quiet was not given."""
    return not quiet and Console(stderr=True).is_terminal


# -- progress ---------------------------------------------------------------------------
#: seconds between progress lines on a stderr that is not a terminal (a log)
PROGRESS_INTERVAL = 15.0
#: environment variable overriding `PROGRESS_INTERVAL` (seconds, e.g. 60 for quieter logs)
PROGRESS_INTERVAL_ENV = "MOVIEREC_PROGRESS_INTERVAL"


def progress_interval() -> float:
    """Seconds between progress lines in logs: $MOVIEREC_PROGRESS_INTERVAL when it is a
    positive number, else `PROGRESS_INTERVAL`."""
    import os

    try:
        value = float(os.environ.get(PROGRESS_INTERVAL_ENV, ""))
    except ValueError:
        return PROGRESS_INTERVAL
    return value if math.isfinite(value) and value > 0 else PROGRESS_INTERVAL


def duration(seconds: float) -> str:
    """A short duration: 7s, 1m05s, 2h03m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _amount(value: float, unit: str) -> str:
    return f"{value / 1e6:.1f}" if unit == "byte" else f"{value:g}"


def task_counts(task: Task) -> str:
    """How far a task is, e.g. "3/20 epochs", "1.2/4.9 MB", "2 trials"; "" before any step
    of a task of unknown length."""
    unit = "MB" if task.unit == "byte" else task.unit + "s"
    if task.total:
        return f"{_amount(task.done, task.unit)}/{_amount(task.total, task.unit)} {unit}"
    return f"{_amount(task.done, task.unit)} {unit}" if task.done else ""


def task_info(task: Task) -> str:
    """A task's latest figures, e.g. "loss 0.4123, validation 0.9214"."""
    return ", ".join(f"{key.replace('_', ' ')} {value:.4g}" for key, value in task.info.items())


def task_line(task: Task, elapsed: float) -> str:
    """One line on a task, e.g. "training mf: 3/20 epochs, loss 0.4123, 1m05s elapsed,
    about 2m10s left" (time left from the pace so far, when the length is known)."""
    head = f"{task.label}: {task.text}" if task.text else task.label
    parts = [p for p in (task_counts(task), task_info(task)) if p]
    parts.append(f"{duration(elapsed)} elapsed")
    if task.total and 0 < task.done < task.total:
        parts.append(f"about {duration(elapsed / task.done * (task.total - task.done))} left")
    return f"{head}: {', '.join(parts)}"


class Heartbeat:
    """Without a terminal: a short line whenever `interval` seconds passed without one, so
    a log shows that a long step is still going.

    `tick()` writes `describe()` (when it is not None) once `interval` seconds on `clock`
    have passed since the last line (`reset()` records a line written elsewhere);
    `start()` runs `tick` on a background thread until `stop()`. Tests drive `tick` with
    a fake clock instead.
    """

    def __init__(self, describe: Callable[[], str | None], write: Callable[[str], None],
                 interval: float = PROGRESS_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.describe, self.write, self.interval, self.clock = describe, write, float(interval), clock
        self.last = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """A line was just written: the next one is due `interval` seconds from now."""
        self.last = self.clock()

    def tick(self) -> bool:
        """Write a line if one is due and there is something to say; True when written."""
        now = self.clock()
        if now - self.last < self.interval:
            return False
        self.last = now  # with nothing to say, the next look is an interval away too
        text = self.describe()
        if text:
            self.write(text)
        return bool(text)

    def _run(self) -> None:
        while not self._stop.wait(max(0.01, self.last + self.interval - self.clock())):
            self.tick()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="movierec-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


#: the displays in use, outermost first: one draws, the ones opened inside it forward to it
_DISPLAYS: list["ProgressDisplay"] = []


class ProgressDisplay:
    """The one place progress is shown: a `movierec.training.progress` reporter on stderr.

    Every task it gets (its own, such as `Steps`', and those library loops open while it is
    in use: torch epochs, ALS sweeps, downloads) is shown:

    * on a terminal (rich's detection; not with `quiet` or `live=False`): as a transient
      bar with its counts, latest figures (loss, validation), elapsed time and time left;
    * otherwise (not with `quiet`): by a heartbeat, one line on the innermost task every
      `interval` seconds (`progress_interval()`) without another line, e.g. "training
      two-tower: 3/20 epochs, loss 0.412, 1m05s elapsed, about 2m10s left";
    * with `quiet`: not at all (the events are swallowed, so no library bar draws either).

    Nothing is drawn before the first task, so a step that never reports shows nothing.
    A display opened while another is in use forwards everything to that one (rich draws
    one live display at a time).
    """

    def __init__(self, quiet: bool = False, live: bool = True, *, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, background: bool = True):
        self.quiet = quiet
        self._background = background  # tests turn it off and drive `heartbeat.tick()` themselves
        # a console of its own: terminal detection as of now, not as of import
        self._console = Console(stderr=True)
        self.bars = live and bars_on(quiet)
        self._clock = clock
        self._tasks: list[Task] = []
        self._started: dict[int, float] = {}
        self._bar_ids: dict[int, Any] = {}
        self._progress = None
        self._lock = threading.RLock()
        self._host: ProgressDisplay | None = None
        self._reporting = None
        self.heartbeat = None if quiet or self.bars else Heartbeat(
            self.describe, self._write, progress_interval() if interval is None else interval, clock)

    # -- in use -------------------------------------------------------------------------
    def __enter__(self):
        from movierec.training.progress import reporting

        if _DISPLAYS and not self.quiet:
            self._host = _DISPLAYS[-1]
        _DISPLAYS.append(self)
        self._reporting = reporting(self)
        self._reporting.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for task in list(self._tasks):
                task.finish()
            if self.heartbeat is not None:
                self.heartbeat.stop()
            if self._progress is not None:
                self._progress.__exit__(*exc)
                self._progress = None
        finally:
            self._reporting.__exit__(*exc)
            _DISPLAYS.remove(self)

    # -- the Reporter of movierec.training.progress --------------------------------------
    def task_started(self, task: Task) -> None:
        if self.quiet:
            return
        with self._lock:
            self._tasks.append(task)
            self._started[id(task)] = self._clock()
        if self._host is not None:
            self._host.task_started(task)
        elif self.bars:
            if self._progress is None:
                self._progress = self._new_bars()
                self._progress.__enter__()
            self._bar_ids[id(task)] = self._progress.add_task(self._bar_label(task), total=task.total,
                                                              completed=task.done, **self._bar_fields(task))
        elif self.heartbeat is not None and self._background:
            self.heartbeat.start()

    def task_updated(self, task: Task) -> None:
        if self._host is not None:
            return self._host.task_updated(task)
        bar = self._bar_ids.get(id(task))
        if bar is not None and self._progress is not None:
            # drawn now, not at the next timed refresh: a short loop's figures show too
            self._progress.update(bar, total=task.total, completed=task.done, description=self._bar_label(task),
                                  refresh=True, **self._bar_fields(task))

    def task_finished(self, task: Task) -> None:
        with self._lock:
            if task in self._tasks:
                self._tasks.remove(task)
            self._started.pop(id(task), None)
        if self._host is not None:
            return self._host.task_finished(task)
        bar = self._bar_ids.pop(id(task), None)
        if bar is not None and self._progress is not None:
            self._progress.remove_task(bar)

    # -- lines --------------------------------------------------------------------------
    def note(self, text: str) -> None:
        """A line worth keeping (rich markup; e.g. a trial's result): above the bars, or
        plain; not with quiet."""
        if self._host is not None:
            return self._host.note(text)
        if self.quiet:
            return
        (self._progress.console if self._progress is not None else self._console).print(
            text, highlight=False, soft_wrap=True)
        if self.heartbeat is not None:
            self.heartbeat.reset()

    def line(self, text: str) -> None:
        """A dim line where no bar shows the same (no terminal, or live=False)."""
        if self._host is not None:
            return self._host.line(text)
        if not self.quiet and not self.bars:
            self.note(f"[dim]{escape(text)}[/dim]")

    def describe(self) -> str | None:
        """The heartbeat's line: the innermost task, after the position of the outer tasks
        that have a count ("tuning mf 3/20 trials > training mf: 4/60 epochs, ...")."""
        with self._lock:
            tasks = list(self._tasks)
            started = dict(self._started)
        if not tasks:
            return None
        now, inner = self._clock(), tasks[-1]
        outer = [f"{t.label} {task_counts(t)}" for t in tasks[:-1] if t.total]
        return " > ".join([*outer, task_line(inner, now - started.get(id(inner), now))])

    def _write(self, text: str) -> None:
        self._console.print(text, highlight=False, soft_wrap=True, markup=False)

    # -- bars ---------------------------------------------------------------------------
    def _new_bars(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=self._console, transient=True)

    @staticmethod
    def _bar_label(task: Task) -> str:
        return escape(f"{task.label}: {task.text}" if task.text else task.label)

    @staticmethod
    def _bar_fields(task: Task) -> dict[str, str]:
        return {"counts": task_counts(task), "info": escape(task_info(task))}


class Steps(ProgressDisplay):
    """Progress over a number of steps (folds, trials, model fits; None: one long step)
    on stderr, and over the library loops they run (see `ProgressDisplay`).

    On a terminal: a transient bar with elapsed time and time left, with a bar of its own
    for each loop inside (epochs ...); otherwise (or with `live` False) one dim line per
    step (for one long step, its label) and a heartbeat line while a step lasts; with
    `quiet` nothing at all.
    """

    def __init__(self, label: str, total: int | None, quiet: bool = False, live: bool = True, *,
                 unit: str = "step", interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 background: bool = True):
        super().__init__(quiet, live, interval=interval, clock=clock, background=background)
        self.label, self.total = label, total
        self.done = 0
        self.task = Task(label=label, total=total, unit=unit)

    def __enter__(self) -> "Steps":
        super().__enter__()
        if self.total is None:
            self.line(self.label)
        self.task.reporter = self
        self.task_started(self.task)
        return self

    def __exit__(self, *exc) -> None:
        self.task.finish()
        super().__exit__(*exc)

    def start(self, text: str) -> None:
        """A step begins (the previous one, if any, is done)."""
        self.task.update(done=self.done, text=text)
        self.line(text)
        self.done += 1

    def advance(self, text: str | None = None) -> None:
        """A step has finished (for steps reported when they end, such as tuning trials)."""
        self.done += 1
        self.task.update(done=self.done, text=text)


@contextmanager
def fetch_progress(name: str, quiet: bool = False) -> Iterator[Callable[[int, int | None], None]]:
    """A progress(done, total) callback for `movierec.data.fetch`: a download bar on a
    terminal, heartbeat lines otherwise, nothing with quiet. Nothing at all shows unless
    bytes are fetched (a cached dataset never calls it); once the download is complete,
    "preparing NAME" shows while it is unpacked, verified and read."""
    display = ProgressDisplay(quiet)
    tasks: list[Task] = []

    def update(done: int, total: int | None) -> None:
        if not tasks:
            tasks.append(Task(label=f"fetching {name}", total=total, unit="byte", reporter=display))
            display.task_started(tasks[0])
        task = tasks[-1]
        if task.unit != "byte":
            return
        task.update(done=done, total=total)
        if total is not None and done >= total:
            task.finish()
            tasks.append(Task(label=f"preparing {name}", total=None, unit="step", reporter=display))
            display.task_started(tasks[-1])

    with display:
        yield update


_LIBRARY_OPTIONS = re.compile(r"\b(user_col|item_col|rating_col|time_col|rating_range)\b")


def cli_words(text: str) -> str:
    """A library message with its reading options named as the CLI spells them
    ("name it with time_col" -> "name it with --time-col")."""
    return _LIBRARY_OPTIONS.sub(lambda m: "--" + m.group(1).replace("_", "-"), text)


def read_options(movies: Path | None = None, user_col: str | None = None, item_col: str | None = None,
                 rating_col: str | None = None, time_col: str | None = None, sep: str | None = None,
                 rating_range: str | None = None) -> dict[str, Any]:
    """The --data reading options given on the command line, as `load_ratings` keywords."""
    given = {"movies": movies, "user_col": user_col, "item_col": item_col, "rating_col": rating_col,
             "time_col": time_col, "sep": sep, "rating_range": parse_range(rating_range)}
    if sep is not None:
        given["sep"] = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
        if not given["sep"]:
            raise ConfigError("--sep needs a separator such as ',' or 'tab'.")
    return {k: v for k, v in given.items() if v is not None}


@contextmanager
def reading_data() -> Iterator[None]:
    """Around code that reads a --data file: its DataWarnings (ignored columns, untitled
    movies) are printed on stderr, and library option names in its errors are spelled as
    the CLI spells them."""
    import warnings

    from movierec.data.readers import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield
        except MovierecError as exc:
            if cli_words(str(exc)) == str(exc):
                raise
            raise type(exc)(cli_words(str(exc))) from None
        finally:
            for w in caught:
                if issubclass(w.category, DataWarning):
                    console.print(f"[yellow]warning:[/yellow] {cli_words(str(w.message))}", highlight=False,
                                  soft_wrap=True)


def check_read_options(dataset: str | None, options: dict[str, Any]) -> None:
    """Reading options (--movies, --user-col ...) belong to --data, never to --dataset."""
    if dataset is not None and options:
        flags = ", ".join("--" + k.replace("_", "-") for k in options)
        raise ConfigError(f"{flags} go{'es' if len(options) == 1 else ''} with --data (your own ratings file); "
                          f"{dataset} comes with its own movies and columns.")


def load_dataset(dataset: str | None, data: Path | None, quiet: bool = False, **options):
    """The Dataset named by --dataset, or read from --data; exactly one must be given.

    `options` are `read_options(...)` for --data (a movies file, column names ...);
    warnings about the file (ignored columns, untitled movies) are printed on stderr.
    """
    from movierec.experiments.data import load_data

    if (dataset is None) == (data is None):
        raise ConfigError("Give either --dataset NAME (such as ml-100k) or --data PATH, not both or neither.")
    options = {k: v for k, v in options.items() if v is not None}
    check_read_options(dataset, options)
    if data is None:
        with fetch_progress(dataset, quiet) as progress:
            return load_data(dataset, progress=progress)
    with reading_data():
        return load_data(data=data, **options)


def parse_value(text: str) -> Any:
    """A --param value: true/false, none/null, a JSON number/list/object, else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """--param key=value (repeatable) -> {key: value}."""
    params: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--param takes key=value, got {item!r}.")
        key, value = item.split("=", 1)
        params[key.strip()] = parse_value(value)
    return params


def model_params(config: Path | None, params: list[str] | None) -> tuple[str | None, dict, str | None]:
    """Hyperparameters from --config (a tuned config {"model", "params"} or a plain JSON
    object) overridden by --param key=value: (model named in the config or None, params,
    config path or None)."""
    named, merged = None, {}
    if config is not None:
        if not Path(config).is_file():
            raise ConfigError(f"Config file {config} does not exist.")
        try:
            doc = json.loads(Path(config).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"Config file {config} is not valid JSON.") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"Config file {config} must hold a JSON object.")
        if isinstance(doc.get("params"), dict):
            named, doc = doc.get("model"), doc["params"]
        merged.update(doc)
    merged.update(parse_params(params))
    return named, merged, (str(config) if config is not None else None)


def model_and_params(model: str | None, config: Path | None, params: list[str] | None
                     ) -> tuple[str, dict, str | None]:
    """(model name, hyperparameters, config path) from --model, --config and --param."""
    named, merged, path = model_params(config, params)
    name = model or named
    if name is None:
        raise ConfigError("Name a model with --model (or give a --config written by `movierec tune`).")
    if named is not None and named != name:
        raise ConfigError(f"The config {config} is for model {named!r}, not {name!r}.")
    return name, merged, path


def parse_range(value: str | None) -> tuple[float, float] | None:
    """'1,5' -> (1.0, 5.0)."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"--rating-range takes two numbers like 1,5, got {value!r}.") from None
    if low >= high:
        raise ConfigError(f"--rating-range needs low < high, got {value!r}.")
    return low, high


def print_json(obj: Any) -> None:
    """One JSON object on stdout; a non-finite number (NaN, infinity) becomes null, so the
    output is valid JSON for any reader."""
    sys.stdout.write(json.dumps(_finite(obj), default=json_default_finite, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (in dicts, lists, tuples, numpy arrays and
    scalars) replaced by None."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


DATASET_OPT = typer.Option(None, "--dataset", "-d", help="MovieLens dataset name, e.g. ml-100k.")
DATA_OPT = typer.Option(None, "--data", help="Your own ratings file (CSV, TSV, :: or Parquet), or a folder of Parquet files.")
MOVIES_OPT = typer.Option(None, "--movies",
                          help="With --data: a movies file for titles and genres (MovieLens movies.csv layout "
                               "movieId,title,genres, or a CSV with id, title and genres columns).")
USER_COL_OPT = typer.Option(None, "--user-col", help="With --data: the column holding user IDs.")
ITEM_COL_OPT = typer.Option(None, "--item-col", help="With --data: the column holding movie IDs.")
RATING_COL_OPT = typer.Option(None, "--rating-col", help="With --data: the column holding ratings.")
TIME_COL_OPT = typer.Option(None, "--time-col",
                            help="With --data: the column holding rating times (dates or Unix seconds); "
                                 "found by name or by its values when not given.")
SEP_OPT = typer.Option(None, "--sep", help="With --data: the field separator (default: from the file; 'tab' for tabs).")
RATING_RANGE_OPT = typer.Option(None, "--rating-range", help="With --data: valid ratings, e.g. 1,5.")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines on stderr.")
TRAIN_OPT = typer.Option(None, "--train", help="Explicit training ratings file (with --test; no split is made).")
TEST_OPT = typer.Option(None, "--test", help="Explicit test ratings file (with --train).")
PARAM_OPT = typer.Option(None, "--param", "-p", help="Model hyperparameter key=value (repeatable), e.g. dim=64.")
CONFIG_OPT = typer.Option(None, "--config", help="JSON file of hyperparameters, e.g. written by `movierec tune`.")
SEED_OPT = typer.Option(42, "--seed", help="Seeds the split, the sampler and the models that take a seed.")
DEVICE_OPT = typer.Option("auto", "--device",
                          help="Where torch models train: auto (a CUDA GPU when present), cpu, cuda or cuda:N.")
THREADS_OPT = typer.Option(1, "--threads", help="Torch CPU threads while a torch model trains (0: torch's default).")


def runtime_from_options(seed: int | None, device: str, threads: int) -> Any:
    """The torch models' RuntimeOptions of --seed, --device and --threads (checked: one
    sentence for a bad value or a GPU this machine lacks)."""
    from movierec.training.options import RuntimeOptions

    if threads < 0:
        raise ConfigError(f"--threads must be 0 or more, got {threads}.")
    return RuntimeOptions(device=device, num_threads=threads).with_seed(seed).checked()
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")


def _protocols_help() -> str:
    """The registered protocols (`movierec.evaluation.protocols`), each in its own words."""
    return "One of: " + "; ".join(get_protocol(name).help for name in available_protocols())


#: the --protocol help: every registered protocol, what it holds out and what --holdout means
PROTOCOLS_HELP = _protocols_help()
HOLDOUT_HELP = "The protocol's test amount (see --protocol)."
