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
