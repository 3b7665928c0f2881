"""Where a command's saved model comes from: `--model-dir DIR`, or `--registry DIR --name NAME
[--version V]` (the one resolver every command that reads a bundle uses), and the `--index`
kinds it may answer through."""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.errors import ConfigError

MODEL_DIR_OPT = typer.Option(None, "--model-dir", help="Model folder written by `movierec train --out`.")
REGISTRY_OPT = typer.Option(None, "--registry", help="Model registry folder (with --name).")
NAME_OPT = typer.Option(None, "--name", help="Model name in the registry.")
VERSION_OPT = typer.Option(None, "--version", help="Registry version (default: the current one).")
INDEX_KINDS = ("auto", "exact", "ivf", "hnsw")  # movierec.retrieval.KINDS (not imported: faiss loads slowly)


def check_index_kind(kind: str | None) -> None:
    """Refuse an unknown --index kind before anything is loaded."""
    if kind is not None and kind not in INDEX_KINDS:
        raise ConfigError(f"--index takes one of {', '.join(INDEX_KINDS)}; got {kind!r}.")


def open_bundle(model_dir: Path | None, registry: Path | None, name: str | None, version: str | None):
    """The bundle named by --model-dir, or by --registry/--name/--version (loaded and verified).

    Raises:
        ConfigError: neither or both sources, or --name/--version without --registry.
        BundleError, RegistryError: the folder is missing or corrupt, no such name or version.
    """
    from movierec.artifacts import ModelRegistry, load_bundle

    if (model_dir is None) == (registry is None):
        raise ConfigError("Give either --model-dir DIR or --registry DIR --name NAME.")
    if model_dir is not None:
        if name is not None or version is not None:
            raise ConfigError("--name and --version go with --registry, not --model-dir.")
        return load_bundle(model_dir)
    if name is None:
        raise ConfigError("--registry needs --name NAME (see `movierec models list`).")
    return ModelRegistry(registry).load(name, version)


__all__ = ["open_bundle", "check_index_kind", "INDEX_KINDS", "MODEL_DIR_OPT", "REGISTRY_OPT", "NAME_OPT", "VERSION_OPT"]
