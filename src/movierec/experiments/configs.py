"""Tuned hyperparameter configurations: one protocol key, one file format, one lookup.

A tuned configuration lives at ``<root>/<dataset>/<protocol key>/<model>.json`` where
`root` is `config_root()` (``$MOVIEREC_CONFIGS``, else the project's ``configs/tuned``,
found from the package's own location: never the working directory) and the protocol
key comes from `protocol_key` (the registered protocol's `config_key`, the only place
that names these folders).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movierec.errors import ConfigError
from movierec.evaluation.protocols import available_protocols, get_protocol
from movierec.jsonable import json_default

#: environment variable naming the root folder of tuned configurations
CONFIGS_ENV = "MOVIEREC_CONFIGS"


def protocol_key(protocol: str, holdout: float | None = None) -> str:
    """The folder name of a protocol's tuned configurations: the registered protocol's
    `config_key` (`movierec.evaluation.protocols`).

    leave-last with holdout 1 (or None) -> "loo"; with a fraction h -> "last" + round(100 h)
    (0.2 -> "last20"); with a whole number k > 1 -> "leave-last-<k>"; "cold-movies" ->
    "cold"; every other protocol ("temporal", "random", "ml100k-folds", "files") -> its
    own name.

    Raises:
        ConfigError: `protocol` names no registered protocol.
    """
    return get_protocol(protocol).config_key(holdout)


def config_root() -> Path:
    """Root folder of tuned configurations: ``$MOVIEREC_CONFIGS``, else the project's
    ``configs/tuned`` next to ``src/`` (located from this package's file, so it does not
    depend on the working directory). A root that does not exist holds no configs."""
    explicit = os.environ.get(CONFIGS_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    import movierec

    return Path(movierec.__file__).resolve().parents[2] / "configs" / "tuned"


def tuned_path(model: str, dataset: str, key: str, root: str | Path | None = None) -> Path:
    """``<root>/<dataset>/<key>/<model>.json`` (root defaults to `config_root()`)."""
    return Path(root if root is not None else config_root()) / dataset / key / f"{model}.json"


@dataclass
class TunedConfig:
    """Hyperparameters chosen on validation data, and how they were chosen.

    Attributes:
        model: registered model name.
        params: constructor arguments (searched and fixed ones, seed included).
        dataset: dataset name, e.g. "ml-100k".
        protocol: protocol key (see `protocol_key`), e.g. "last20".
        validation: the best trial's validation metrics and the search's facts
            (n_trials, seed, sizes of the fit and validation parts, best trial ...).
        trials: number of Optuna trials.
        seed: seed of the sampler.
        path: where it was loaded from or saved to.
    """

    model: str
    params: dict[str, Any]
    dataset: str | None = None
    protocol: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    seed: int = 42
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written by `save`."""
        return {"model": self.model, "params": self.params, "validation": self.validation,
                "dataset": self.dataset, "protocol": self.protocol, "trials": self.trials, "seed": self.seed}

    @classmethod
    def load(cls, path: str | Path) -> "TunedConfig":
        """Read a tuned configuration.

        Accepts the current format, the older CLI format ({"model", "params",
        "validation", "dataset", "protocol": a protocol name such as "leave-last",
        "holdout"}, whose protocol becomes its key) and the ranking
        tuner's format ({"params", "validation"}, where the model, dataset and protocol
        key come from the path ``.../<dataset>/<key>/<model>.json``).

        Raises:
            ConfigError: missing file, invalid JSON, or no "params" object.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Tuned config {path} does not exist.")
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Tuned config {path} is not valid JSON ({exc}); fix or remove it.") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
            raise ConfigError(f"Tuned config {path} must be a JSON object with a \"params\" object.")
        validation = doc.get("validation") if isinstance(doc.get("validation"), dict) else {}
        protocol, dataset = doc.get("protocol"), doc.get("dataset")
        if isinstance(protocol, str) and protocol in available_protocols():
            # the older CLI format names the protocol (and its holdout), not its key
            protocol = protocol_key(protocol, doc.get("holdout"))
        if protocol is None and dataset is None:  # the ranking tuner's format: .../<dataset>/<key>/<model>.json
            protocol, dataset = path.parent.name or None, path.parent.parent.name or None
        trials = doc.get("trials", validation.get("n_trials", 0))
        seed = doc.get("seed", validation.get("seed", (doc.get("split") or {}).get("seed", 42)))
        return cls(model=doc.get("model") or path.stem, params=dict(doc["params"]), dataset=dataset or None,
                   protocol=protocol, validation=validation, trials=int(trials or 0), seed=int(seed),
                   path=path)

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (temporary sibling, then rename); default path: the tuned-config
        location of its model, dataset and protocol key under `config_root()`."""
        if path is None:
            if not (self.dataset and self.protocol):
                raise ConfigError("A tuned config needs a dataset and protocol key to be saved without a path.")
            path = tuned_path(self.model, self.dataset, self.protocol)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=json_default) + "\n")
        tmp.replace(path)
        self.path = path
        return path


def find_tuned(model: str, dataset: str | None, key: str | None, root: str | Path | None = None) -> TunedConfig | None:
    """The most specific tuned configuration of a model, or None.

    Looks for ``<root>/<dataset>/<key>/<model>.json``, then ``<root>/<dataset>/<model>.json``,
    then ``<root>/<model>.json`` (root defaults to `config_root()`).

    Raises:
        ConfigError: the file found is not a valid tuned configuration.
    """
    base = Path(root) if root is not None else config_root()
    options = []
    if dataset:
        if key:
            options.append(base / dataset / key / f"{model}.json")
        options.append(base / dataset / f"{model}.json")
    options.append(base / f"{model}.json")
    path = next((p for p in options if p.is_file()), None)
    return TunedConfig.load(path) if path is not None else None


__all__ = ["CONFIGS_ENV", "TunedConfig", "config_root", "find_tuned", "protocol_key", "tuned_path"]
