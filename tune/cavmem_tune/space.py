"""Search spaces: a TOML file whose leaf tables name a `--params` key and its distribution.

    [ddpg.actor_lr]
    loguniform = [1e-5, 1e-2]
    [epsilon.explore_permille]
    randint = [0, 400]        # both ends included
    [epsilon.anneal]
    choice = ["exponential", "linear"]

Kinds: ``uniform``, ``loguniform`` (floats, ends included), ``randint`` (integers, both ends
included) and ``choice``. The keys are those `cavmem params` prints (docs/agents.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("uniform", "loguniform", "randint", "choice")


class SpaceError(ValueError):
    """A space file that cannot be used, naming the file and the key."""


@dataclass(frozen=True)
class Dimension:
    """One searched key: its dotted `--params` path, kind and arguments."""

    key: str
    kind: str
    args: tuple

    def to_tune(self) -> Any:
        """The Ray Tune distribution."""
        from ray import tune

        if self.kind == "uniform":
            return tune.uniform(*self.args)
        if self.kind == "loguniform":
            return tune.loguniform(*self.args)
        if self.kind == "randint":
            lo, hi = self.args
            return tune.randint(lo, hi + 1)
        return tune.choice(list(self.args))

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in this dimension."""
        if self.kind == "choice":
            return value in self.args
        lo, hi = self.args
        return lo <= value <= hi


def _dimension(file: Path, key: str, table: dict) -> Dimension:
    kinds = [k for k in table if k in KINDS]
    if len(kinds) != 1 or len(table) != 1:
        raise SpaceError(f"{file}: {key}: give exactly one of {', '.join(KINDS)} (found {sorted(table)})")
    kind = kinds[0]
    args = table[kind]
    if not isinstance(args, list) or not args:
        raise SpaceError(f"{file}: {key}.{kind}: a non-empty list")
    if kind != "choice":
        if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise SpaceError(f"{file}: {key}.{kind}: two numbers [low, high]")
        lo, hi = args
        if not lo < hi:
            raise SpaceError(f"{file}: {key}.{kind}: low {lo} is not below high {hi}")
        if kind == "loguniform" and lo <= 0:
            raise SpaceError(f"{file}: {key}.loguniform: low {lo} must be above 0")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise SpaceError(f"{file}: {key}.randint: two integers")
    return Dimension(key, kind, tuple(args))


def _walk(file: Path, prefix: str, table: dict, out: list[Dimension]) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if not isinstance(value, dict):
            raise SpaceError(f"{file}: {key}: a table with one of {', '.join(KINDS)}")
        if any(k in KINDS for k in value):
            out.append(_dimension(file, key, value))
        else:
            _walk(file, key, value, out)


def load(path: Path) -> list[Dimension]:
    """The dimensions of the space file at `path`, in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpaceError(f"{path}: {e.strerror}") from e
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{path}: {e}") from e
    dims: list[Dimension] = []
    _walk(path, "", table, dims)
    if not dims:
        raise SpaceError(f"{path}: no dimension")
    return dims


def to_tune(dims: list[Dimension]) -> dict[str, Any]:
    """Ray Tune's `param_space`: flat, keyed by the dotted path."""
    return {d.key: d.to_tune() for d in dims}
