"""Artifacts: bundles (a fitted model as a verified folder) and a registry of their versions."""

from movierec.artifacts.bundle import (
    FORMAT_VERSION,
    MIN_READ_VERSION,
    Bundle,
    is_bundle_dir,
    load_bundle,
    read_manifest,
    save_bundle,
    verify_bundle,
)
from movierec.artifacts.registry import ModelRegistry, ModelVersion
from movierec.errors import BundleError, RegistryError

__all__ = [
    "FORMAT_VERSION",
    "MIN_READ_VERSION",
    "Bundle",
    "BundleError",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "is_bundle_dir",
    "load_bundle",
    "read_manifest",
    "save_bundle",
    "verify_bundle",
]
