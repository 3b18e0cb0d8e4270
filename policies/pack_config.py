"""Policy pack configuration: the JSON that ``pulumi preview --policy-pack-config`` reads.

The format is Pulumi's own::

    {"all": "mandatory",
     "aks-api-server-restricted": "advisory",
     "k8s-image-from-environment-acr": {"enforcementLevel": "mandatory",
                                        "allowedRegistries": ["recplatprod.azurecr.io"]}}

``all`` sets every policy's level; a policy's own entry overrides it; other keys
of an entry are that policy's properties (``args.get_config()``). One file per
stack ships in ``policies/config/``; the offline evaluation uses the same files
and the same precedence, so ``recplat plan`` and ``pulumi preview`` agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, Policy

CONFIG_DIR = Path(__file__).parent / "config"
ALL_POLICIES_KEY = "all"
_LEVELS = {level.value: level for level in EnforcementLevel}


class PackConfigError(ValueError):
    """A policy pack config that names an unknown policy or level; the message says where."""


def shipped_config_path(stack: str) -> Path:
    """The config file shipped for ``stack`` (it may not exist for ad-hoc stacks)."""
    return CONFIG_DIR / f"{stack}.json"


def load_pack_config(path: Path) -> dict[str, Any]:
    """Read a policy pack config file, with errors that name the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PackConfigError(f"{path}: cannot read policy config: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise PackConfigError(
            f"{path}: line {error.lineno}: not valid JSON ({error.msg})"
        ) from error
    if not isinstance(data, dict):
        raise PackConfigError(
            f"{path}: expected a JSON object of policy names, got {type(data).__name__}"
        )
    return data


def config_for_stack(stack: str) -> dict[str, Any]:
    """The shipped config of ``stack``, or an empty config (code defaults) if none ships."""
    path = shipped_config_path(stack)
    return load_pack_config(path) if path.is_file() else {}


def _level(value: Any, where: str) -> EnforcementLevel:
    if isinstance(value, EnforcementLevel):
        return value
    if isinstance(value, str) and value in _LEVELS:
        return _LEVELS[value]
    raise PackConfigError(
        f"{where}: enforcement level must be one of {', '.join(_LEVELS)}, got {value!r}"
    )


def validate_pack_config(
    config: Mapping[str, Any], policy_names: frozenset[str], source: str = "policy config"
) -> None:
    """Reject unknown policy names and levels before anything runs."""
    for key, value in config.items():
        where = f"{source}: {key}"
        if key != ALL_POLICIES_KEY and key not in policy_names:
            raise PackConfigError(
                f"{where}: no such policy; use 'all' or a policy id from policies/README.md"
            )
        if isinstance(value, Mapping):
            if "enforcementLevel" in value:
                _level(value["enforcementLevel"], f"{where}.enforcementLevel")
        else:
            _level(value, where)


def enforcement_for(policy: Policy, config: Mapping[str, Any]) -> EnforcementLevel:
    """The level a policy runs at: its own entry, else ``all``, else its code default."""
    entry = config.get(policy.name)
    if isinstance(entry, Mapping) and "enforcementLevel" in entry:
        return _level(entry["enforcementLevel"], policy.name)
    if entry is not None and not isinstance(entry, Mapping):
        return _level(entry, policy.name)
    if ALL_POLICIES_KEY in config:
        return _level(config[ALL_POLICIES_KEY], ALL_POLICIES_KEY)
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def properties_for(policy: Policy, config: Mapping[str, Any]) -> dict[str, Any]:
    """The properties (everything but the level) a policy sees through ``args.get_config()``."""
    entry = config.get(policy.name)
    if not isinstance(entry, Mapping):
        return {}
    return {key: value for key, value in entry.items() if key != "enforcementLevel"}
