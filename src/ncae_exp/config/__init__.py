"""The config's typed schema (schema.py) and the validation that runs on a composed config
before any work (validate.py): ``ncae-run`` calls :func:`validate_config` first thing."""

from ncae_exp.config.validate import validate_config

__all__ = ["validate_config"]
