"""The typed schema of ``ncae-run``'s config: one dataclass per node whose keys are fixed.

A dataclass field is a key (its annotation the type, its metadata the allowed values); a
node may hold nothing else. Nodes that describe an object — ``model`` (and its ``feedback``,
``pretrain``), ``protocol``, ``pretrain`` — have no dataclass here: their ``_target_`` class's
constructor is their schema (its parameters the keys, its annotations the types) and it checks
its own values when built. ``dataset=synthetic`` adds the generator's arguments
(``data.synthetic.generate_synthetic``) to :class:`DatasetConf`. No node is open for new
keys; ``hydra.*`` is Hydra's own (it checks it against its schema).

A key added to a YAML file under conf/ must be added here too (tests/test_validation.py
validates every option of every group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


def at_least(low: float) -> dict[str, Any]:
    return {"ge": low}


def between(low: float, high: float) -> dict[str, Any]:
    """Closed interval [low, high]."""
    return {"ge": low, "le": high}


def one_of(*choices: str) -> dict[str, Any]:
    return {"choices": choices}


@dataclass
class RunConf:
    """conf/config.yaml: the top level (groups are nodes of their own, see GROUPS)."""

    seed: int = field(default=0, metadata=at_least(0))
    objective: Optional[str] = None  # ${protocol.select}: what an Optuna sweeper optimises
    retrain: bool = False
    repeats: int = 1  # >= 1, checked with retrain and compare_to (protocols/selection.py)
    compare_to: Optional[str] = None
    compare_overrides: list[str] = field(default_factory=list)
    resume: Optional[str] = None  # an MLflow run id to go on from its last checkpoint


@dataclass
class ModelPublishConf:
    """Keys every ``model`` node has besides its class's arguments (conf/config.yaml): what to
    do with the trained model. Stripped before the model is built (models/registry.py
    PUBLISH_KEYS names the same keys)."""

    register: bool = False  # register the run's MLflow model in the Model Registry
    register_name: Optional[str] = field(default=None, metadata={"nonempty": True})  # None: generated


# Top-level nodes filled by a config group (each checked by its own schema).
GROUPS = ("protocol", "dataset", "split", "model", "pretrain", "trainer", "mlflow", "paths")


@dataclass
class TrainerConf:
    """conf/trainer/: training/trainer.py and training/device.py."""

    epochs: int = field(default=100, metadata=at_least(1))
    batch_size: Optional[int] = field(default=None, metadata=at_least(1))  # replaces model.batch_size
    patience: Optional[int] = field(default=None, metadata=at_least(1))
    device: str = field(default="auto", metadata=one_of("auto", "cpu", "gpu"))
    deterministic: bool = False  # TensorFlow's op determinism (GPU)


@dataclass
class MlflowConf:
    """conf/mlflow/: tracking/mlflow_tracker.py."""

    enabled: bool = True
    tracking_uri: str = field(default="sqlite:///mlflow.db", metadata={"nonempty": True})
    experiment_name: str = field(default="ncae-explicit", metadata={"nonempty": True})
    run_name: Optional[str] = None


@dataclass
class PathsConf:
    """conf/paths/."""

    data_dir: str = field(default="data", metadata={"nonempty": True})


@dataclass
class DatasetConf:
    """conf/dataset/: a registered dataset (data/registry.py); ``synthetic`` adds the
    generator's arguments."""

    name: str
    url: Optional[str] = None  # a mirror of the official archive


@dataclass
class RatioSplit:
    """split kind ``ratio`` (data/splits.py); the fractions must also sum to 1."""

    kind: str
    train: float = field(default=0.8, metadata=between(0, 1))
    val: float = field(default=0.1, metadata=between(0, 1))
    test: float = field(default=0.1, metadata=between(0, 1))


@dataclass
class CanonicalSplit:
    """split kind ``canonical``: ML-100K's published folds (data/loader.py)."""

    kind: str
    fold: int = 1
    val_fraction: float = 0.1


@dataclass
class LeaveOneOutSplit:
    """split kind ``leave_one_out`` (data/leave_one_out.py), the implicit protocol's."""

    kind: str
    min_interactions: int = 3
    validation: str = "random"  # the validation item: random or latest (data/leave_one_out.py)
    keep_share: float = 1.0


SPLITS = {"ratio": RatioSplit, "canonical": CanonicalSplit, "leave_one_out": LeaveOneOutSplit}

# The sections of the config with a dataclass schema, checked before anything is imported
# that takes time (the models' modules import TensorFlow).
FIXED = {"trainer": TrainerConf, "mlflow": MlflowConf, "paths": PathsConf}
