"""One trial: a configuration run as `cavmem run` processes, one per scenario and seed.

The processes run side by side with `--progress jsonl`; after each episode that all have
finished, the trial's score so far is the mean over runs of the run's miss rate (the mean
over its VMs, pages/s) over its last `window` episodes, each divided by the static split's
on the same scenario and seed (:func:`baselines`): 1 is the static split, lower is better.
The final score is the same after the last episode, once every run has ended with its
`done` line and status 0. A process that fails, is killed or stops early fails the trial
with its exit status and last stderr lines.
"""

from __future__ import annotations

import json
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import params as params_mod


class TrialFailed(RuntimeError):
    """A `cavmem` process of the trial failed."""


@dataclass
class Objective:
    """What a trial runs and how it is scored."""

    cavmem: Path
    scenarios: list[Path]
    seeds: list[int]
    episodes: int
    window: int
    policy: str = "ddpg"
    baselines: dict[str, float] = field(default_factory=dict)

    def runs(self) -> list[tuple[Path, int]]:
        """Every (scenario, seed) of a trial."""
        return [(s, seed) for s in self.scenarios for seed in self.seeds]


def run_key(scenario: Path, seed: int) -> str:
    """The key of a (scenario, seed) in :attr:`Objective.baselines`."""
    return f"{Path(scenario).stem}#{seed}"


def _spawn(obj: Objective, scenario: Path, seed: int, policy: str, out: Path, params: Path | None) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(obj.cavmem), "run", str(scenario), "--policy", policy, "--episodes", str(obj.episodes),
        "--seed", str(seed), "--progress", "jsonl", "--out", str(out),
    ]
    if params is not None:
        cmd += ["--params", str(params)]
    stderr = open(out / "stderr.txt", "w")
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
    finally:
        stderr.close()


def _failure(p: subprocess.Popen, out: Path, why: str) -> TrialFailed:
    p.kill()
    status = p.wait()
    with open(out / "stderr.txt") as f:
        tail = "".join(deque(f, maxlen=5)).strip()
    return TrialFailed(f"{out}: {why} (exit status {status}); stderr: {tail or '(empty)'}")


def _lines(p: subprocess.Popen, out: Path) -> Iterator[dict]:
    assert p.stdout is not None
    for line in p.stdout:
        try:
            yield json.loads(line)
        except json.JSONDecodeError as e:
            raise _failure(p, out, f"not a JSON line: {line[:80]!r}") from e


def _run_all(obj: Objective, policy: str, workdir: Path, params: Path | None,
             on_episode: Callable[[int, list[float]], None] | None) -> dict[str, float]:
    """Runs every (scenario, seed); calls `on_episode(k, rolling)` after episode k of all;
    returns each run's miss rate over its last `window` episodes."""
    runs = obj.runs()
    outs = [workdir / f"{run_key(s, seed).replace('#', '-seed')}" for s, seed in runs]
    procs = [_spawn(obj, s, seed, policy, out, params) for (s, seed), out in zip(runs, outs)]
    streams = [_lines(p, out) for p, out in zip(procs, outs)]
    recent = [deque(maxlen=obj.window) for _ in runs]
    try:
        for k in range(obj.episodes):
            for i, stream in enumerate(streams):
                line = next(stream, None)
                if line is None or line.get("event") != "episode":
                    raise _failure(procs[i], outs[i], f"stopped before episode {k}")
                rate = line.get("mean_miss_rate_pages_per_s")
                if rate is not None:
                    recent[i].append(rate)
            if on_episode is not None:
                on_episode(k, [sum(r) / len(r) if r else float("nan") for r in recent])
        finals = {}
        for i, stream in enumerate(streams):
            done = next(stream, None)
            status = procs[i].wait()
            if done is None or done.get("event") != "done" or status != 0:
                raise _failure(procs[i], outs[i], "no done line")
            # Over the last `window` episodes (the done line's window is cavmem's, up to 100).
            finals[run_key(*runs[i])] = sum(recent[i]) / len(recent[i]) if recent[i] else None
        return finals
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def baselines(obj: Objective, workdir: Path) -> dict[str, float]:
    """The static split's miss rate over the last `window` episodes per (scenario, seed),
    the scores' denominators."""
    finals = _run_all(obj, "static", workdir, None, None)
    for key, rate in finals.items():
        if not rate or rate <= 0:
            raise TrialFailed(f"{key}: the static split misses nothing ({rate}); the score divides by it")
    return finals


def score(obj: Objective, rates: dict[str, float] | list[float], keys: list[str] | None = None) -> float:
    """The mean over runs of rate / baseline."""
    if isinstance(rates, dict):
        keys, values = list(rates), list(rates.values())
    else:
        values = rates
    assert keys is not None
    ratios = [v / obj.baselines[k] for k, v in zip(keys, values) if v is not None and v == v]
    return sum(ratios) / len(ratios) if ratios else float("nan")


def evaluate(config: dict, obj: Objective, workdir: Path,
             report: Callable[[dict], None], every: int = 10) -> float:
    """Runs `config` (flat `--params` keys) and reports `{"episode", "normalized_miss"}`
    every `every` episodes and at the end; returns the final score."""
    workdir.mkdir(parents=True, exist_ok=True)
    params = workdir / "params.toml"
    params.write_text(params_mod.to_toml(config, header="cavmem-tune trial"))
    keys = [run_key(s, seed) for s, seed in obj.runs()]

    def on_episode(k: int, rolling: list[float]) -> None:
        if (k + 1) % every == 0 and k + 1 < obj.episodes:
            report({"episode": k + 1, "normalized_miss": score(obj, rolling, keys)})

    finals = _run_all(obj, obj.policy, workdir, params, on_episode)
    final = score(obj, finals)
    report({"episode": obj.episodes, "normalized_miss": final, "final": True})
    return final
