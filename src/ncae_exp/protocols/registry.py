"""Building the protocol object from ``conf/protocol/<name>.yaml``."""

from __future__ import annotations

from omegaconf import DictConfig

from ncae_exp.config_utils import instantiate_node
from ncae_exp.errors import ConfigError
from ncae_exp.protocols.base import Protocol


def build_protocol(protocol_cfg: DictConfig) -> Protocol:
    protocol = instantiate_node(protocol_cfg, "protocol")
    if not isinstance(protocol, Protocol):
        raise ConfigError(f"protocol _target_ {protocol_cfg.get('_target_')!r} is not a Protocol")
    return protocol
