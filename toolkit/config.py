"""Stage configuration: frozen dataclasses, resolved as defaults -> YAML file -> CLI flags.

Each stage declares one frozen dataclass here (``ExtractConfig``, ``SplitConfig``,
``BenchConfig``...). :func:`resolve` builds it from the three layers, so the resolved config
saved beside results says exactly what ran. A YAML file may hold the stage's keys at top level
or under a section named after the stage (``extract:``, ``split:``, ``bench:``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from toolkit.errors import AdtkError

C = TypeVar("C")


def resolve(
    cls: type[C],
    yaml_path: str | os.PathLike | None = None,
    section: str | None = None,
    **flags: Any,
) -> C:
    """Defaults of ``cls``, then the YAML file's values, then the flags that are not None."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_yaml(yaml_path, section))
    values.update({k: v for k, v in flags.items() if v is not None})
    return build(cls, values, where=str(yaml_path) if yaml_path else "options")


def build(cls: type[C], values: Mapping[str, Any], where: str = "config") -> C:
    """Instantiate ``cls`` from ``values``; unknown keys are an error that names them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise AdtkError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints.get(k), v) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise AdtkError(f"{where}: {e}") from None


def _coerce(hint: Any, value: Any) -> Any:
    # YAML and JSON give lists where a frozen dataclass wants tuples (hashable, immutable).
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def load_yaml(path: str | os.PathLike, section: str | None = None) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise AdtkError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise AdtkError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise AdtkError(f"{path}: expected a mapping of settings at top level")
    if section and isinstance(data.get(section), dict):
        return dict(data[section])
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists, paths strings)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def config_hash(cfg: Any, length: int = 12) -> str:
    """A stable short hash of a config (dataclass or mapping): same settings, same hash."""
    d = to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
