"""The model registry in the lake: ``<lake>/models/<version>/`` holds both fitted models and a
card (training window, features, metrics beside the baselines, library and code versions);
``serving.json`` names the model that serves predictions. Every write is a rename: atomic."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib

SERVING = "serving.json"
MODELS = "models.joblib"
CARD = "card.json"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("scikit-learn", "numpy", "pandas", "crypto-analytics"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def code_version() -> str:
    """The git commit of the code that trained (``unknown`` outside a checkout)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return found.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class LoadedModel:
    version: str
    classifier: Any
    regressor: Any
    card: dict[str, Any]


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, version: str, classifier: Any, regressor: Any, card: dict[str, Any]) -> Path:
        return self.save_models(version, {"classifier": classifier, "regressor": regressor}, card)

    def save_models(self, version: str, models: dict[str, Any], card: dict[str, Any]) -> Path:
        """``models`` (name -> fitted object) and the card as version ``version``, atomically."""
        target = self.root / version
        staging = self.root / f".{version}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            joblib.dump(models, staging / MODELS)
            (staging / CARD).write_text(json.dumps(card, indent=2, default=str))
            if target.exists():
                shutil.rmtree(target)  # the same version again (a re-run): replaced whole
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def card(self, version: str) -> dict[str, Any]:
        path = self.root / version / CARD
        if not path.exists():
            raise FileNotFoundError(f"no model {version!r} in {self.root}")
        return json.loads(path.read_text())

    def load(self, version: str) -> LoadedModel:
        card = self.card(version)
        models = joblib.load(self.root / version / MODELS)
        return LoadedModel(version, models["classifier"], models["regressor"], card)

    def load_models(self, version: str) -> dict[str, Any]:
        self.card(version)  # exists
        return dict(joblib.load(self.root / version / MODELS))

    def serving(self) -> dict[str, Any] | None:
        path = self.root / SERVING
        return json.loads(path.read_text()) if path.exists() else None

    def promote(self, version: str, reason: str) -> None:
        self.card(version)  # exists
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{SERVING}.{uuid.uuid4().hex[:8]}"
        staging.write_text(json.dumps({"version": version, "reason": reason}, indent=2))
        os.replace(staging, self.root / SERVING)

    def promote_newest_passed(self) -> tuple[str | None, str]:
        """Serve the newest version whose gate passed (unless it already serves): (the version
        that serves now, or None for the baseline; why)."""
        cards = {v: self.card(v) for v in self.versions()}
        passed = [v for v, card in cards.items() if card["gate"]["passed"]]
        serving = self.serving()
        if not passed:
            return (
                serving["version"] if serving else None,
                "no candidate has passed the promotion gate: predictions come from the best baseline",
            )
        newest = passed[-1]
        why = "; ".join(cards[newest]["gate"]["reasons"])
        if serving and serving["version"] == newest:
            return newest, f"already serving: {why}"
        self.promote(newest, why)
        return newest, why

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
