"""The tracker the trainer and the pipeline call; MLflow is one implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


class Tracker(ABC):
    """Where a run's params, metrics (optionally per step), tags and artifacts go."""

    @abstractmethod
    def log_params(self, params: Mapping[str, object]) -> None: ...

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    @abstractmethod
    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    @abstractmethod
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        """Every file under ``folder``, keeping its sub-folders, under ``artifact_path``."""
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            rel = path.parent.relative_to(folder).as_posix()
            where = "/".join(x for x in (artifact_path, "" if rel == "." else rel) if x)
            self.log_artifact(path, where or None)

    def register_model(self, artifact_path: str, name: str) -> str | None:
        """Register the run's MLflow model at ``artifact_path`` in the Model Registry under
        ``name``; returns the new version, or None (no registry: nothing tracked)."""
        return None

    @abstractmethod
    def child(self, name: str, tags: Mapping[str, str]) -> "contextmanager[Tracker]":
        """A nested run of this one (e.g. one retraining repeat), ended with the block:
        FINISHED, or FAILED / KILLED when the block raises / is interrupted."""


class MemoryTracker(Tracker):
    """Keeps everything in lists — for library use without a store, and for tests."""

    def __init__(self) -> None:
        self.params: dict[str, object] = {}
        self.metrics: list[tuple[str, float, int | None]] = []
        self.tags: dict[str, str] = {}
        self.artifacts: list[tuple[Path, str | None]] = []
        self.children: list[tuple[str, MemoryTracker]] = []

    def log_params(self, params):
        self.params.update(params)

    def log_metrics(self, metrics, step=None):
        self.metrics.extend((k, float(v), step) for k, v in metrics.items())

    def set_tags(self, tags):
        self.tags.update(tags)

    def log_artifact(self, path, artifact_path=None):
        self.artifacts.append((Path(path), artifact_path))

    @contextmanager
    def child(self, name, tags) -> Iterator["MemoryTracker"]:
        tracker = MemoryTracker()
        tracker.set_tags(tags)
        self.children.append((name, tracker))
        yield tracker

    def series(self, key: str) -> list[tuple[int | None, float]]:
        return [(step, value) for k, value, step in self.metrics if k == key]
