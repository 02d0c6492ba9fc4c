"""`python -m cavmem_tune search|grid …` (README, docs/search.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from . import space as space_mod
from .trial import Objective, TrialFailed

REPO = Path(__file__).resolve().parents[2]


def _cavmem(given: str | None) -> Path:
    for candidate in (given, os.environ.get("CAVMEM"), str(REPO / "target/release/cavmem"), shutil.which("cavmem")):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise SystemExit("cavmem-tune: no cavmem executable: build it (cargo build --release -p cavmem-harness), "
                     "or give --cavmem PATH or CAVMEM")


def _ints(text: str) -> list[int]:
    """`0-9` or `0,3,5`."""
    if "-" in text:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return [int(x) for x in text.split(",")]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cavmem_tune", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="a hyperparameter study (Ray Tune: Optuna TPE + ASHA)")
    s.add_argument("--space", type=Path, required=True, help="search space (TOML), e.g. tune/spaces/ddpg.toml")
    s.add_argument("--scenarios", type=Path, nargs="+", required=True, help="scenario files to tune on")
    s.add_argument("--seeds", type=_ints, default=[0, 1], help="seeds, e.g. 0-2 or 0,5 (default 0,1)")
    s.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    s.add_argument("--episodes", type=int, default=300, help="episodes per run (default 300)")
    s.add_argument("--window", type=int, default=50, help="episodes at the end scored (default 50)")
    s.add_argument("--grace", type=int, default=None, help="ASHA's grace period, episodes (default episodes/4)")
    s.add_argument("--policy", default="ddpg", help="the policy tuned (default ddpg)")
    s.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed (default 0)")
    s.add_argument("--cpus-per-trial", type=float, default=1.0)
    s.add_argument("--resume", action="store_true",
                   help="continue the interrupted study in --out (same flags); its finished trials are kept")
    s.add_argument("--out", type=Path, default=Path("results/search"))
    s.add_argument("--address", default=None, help="a Ray cluster (auto: the one started with ray start); default: a local Ray")
    s.add_argument("--cavmem", default=None, help="the cavmem executable (default target/release/cavmem)")
    r = sub.add_parser("report", help="write a study's outputs from its records, running nothing")
    r.add_argument("--out", type=Path, required=True, help="the study's directory")
    g = sub.add_parser("grid", help="cavmem paper|suite in shards as Ray tasks, then merged")
    g.add_argument("grid_command", choices=["paper", "suite"])
    g.add_argument("--shards", type=int, required=True)
    g.add_argument("--out", type=Path, default=Path("results/grid"))
    g.add_argument("--cpus-per-shard", type=float, default=1.0)
    g.add_argument("--address", default=None)
    g.add_argument("--cavmem", default=None)
    g.epilog = "After --, the command's own flags, e.g. -- --quick --seeds 2."
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    a = _parser().parse_args(own)
    cavmem = _cavmem(a.cavmem) if a.command != "report" else None
    command = "python -m cavmem_tune " + shlex.join(argv)
    try:
        if a.command == "search":
            from .search import run_study

            validation = {"u4-tight", "u8-churn-noisy", "u16-large"}
            held = [s for s in a.scenarios if s.stem in validation]
            if held:
                raise SystemExit(f"cavmem-tune: {', '.join(map(str, held))}: validation-only (docs/suite.md), never tuned on")
            if not 0 < a.window <= a.episodes:
                raise SystemExit(f"cavmem-tune: --window {a.window} must be in 1..--episodes {a.episodes}")
            obj = Objective(cavmem=cavmem, scenarios=[s.resolve() for s in a.scenarios], seeds=a.seeds,
                            episodes=a.episodes, window=a.window, policy=a.policy)
            grace = a.grace if a.grace is not None else max(a.window, a.episodes // 4)
            settings = run_study(space_file=a.space, obj=obj, trials=a.trials, out=a.out, address=a.address,
                                 seed=a.sampler_seed, cpus_per_trial=a.cpus_per_trial, grace_episodes=grace,
                                 command=command, resume=a.resume)
            print(f"best objective {settings['best']['normalized_miss']:.4f}; wrote {a.out}/best.toml, report.md, trials.csv")
        elif a.command == "report":
            from .search import report_only

            settings = report_only(out=a.out, command=command)
            print(f"best objective {settings['best']['normalized_miss']:.4f}; wrote {a.out}/best.toml, report.md, trials.csv")
        else:
            from .grid import run_grid

            merged = run_grid(cavmem=cavmem, command=a.grid_command, args=extra, shards=a.shards, out=a.out,
                              address=a.address, cpus_per_shard=a.cpus_per_shard)
            print(f"merged into {merged}")
    except (space_mod.SpaceError, TrialFailed) as e:
        print(f"cavmem-tune: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
