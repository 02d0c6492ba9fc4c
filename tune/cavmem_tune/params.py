"""A configuration (dotted keys → values) as a `--params` file for `cavmem`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """`{"ddpg.ou.theta": 0.2}` → `{"ddpg": {"ou": {"theta": 0.2}}}`."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def to_toml(flat: dict[str, Any], header: str = "") -> str:
    """A params file setting the keys of `flat` (dotted paths); the others keep `cavmem`'s defaults."""
    lines = [f"# {line}" for line in header.splitlines()]
    tree = nest(flat)

    def table(path: str, node: dict[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        if scalars:
            if path:
                lines.append(f"\n[{path}]")
            lines.extend(f"{k} = {_value(v)}" for k, v in scalars.items())
        for k, v in node.items():
            if isinstance(v, dict):
                table(f"{path}.{k}" if path else k, v)

    table("", tree)
    return "\n".join(lines).strip() + "\n"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of :func:`nest`."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def defaults(cavmem: Path) -> dict[str, Any]:
    """`cavmem params`' defaults, flat."""
    text = subprocess.run([str(cavmem), "params"], check=True, capture_output=True, text=True).stdout
    return flatten(tomllib.loads(text))
