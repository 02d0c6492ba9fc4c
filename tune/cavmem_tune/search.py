"""The study: Ray Tune with Optuna's TPE sampler (OptunaSearch) and ASHA early stopping.

Each trial is :func:`cavmem_tune.trial.evaluate` of one configuration; the study's first
trial is the defaults (`cavmem params`), so the report compares the best with them. A trial
that fails is recorded as failed (``ERROR`` in trials.csv) and the study goes on. Outputs in
`out`: ``trials.csv``, ``best.toml`` (a `--params` file), ``report.md``, ``search.svg``,
``study.json`` (the settings), ``ray/`` (Ray Tune's own records).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

from . import params as params_mod
from . import space as space_mod
from .trial import Objective, TrialFailed, baselines, evaluate

METRIC = "normalized_miss"


def _trainable(obj: Objective, root: Path):
    from ray import tune

    def trainable(config: dict) -> None:
        trial_id = tune.get_context().get_trial_id()
        evaluate(config, obj, root / "trials" / trial_id, tune.report)

    return trainable


def _importances(rows: list[dict], dims: list[space_mod.Dimension]) -> dict[str, float]:
    """Optuna's PED-ANOVA importances of the finished trials' parameters (empty if too few)."""
    import optuna

    dists = {}
    for d in dims:
        if d.kind == "uniform":
            dists[d.key] = optuna.distributions.FloatDistribution(*d.args)
        elif d.kind == "loguniform":
            dists[d.key] = optuna.distributions.FloatDistribution(*d.args, log=True)
        elif d.kind == "randint":
            dists[d.key] = optuna.distributions.IntDistribution(*d.args)
        else:
            dists[d.key] = optuna.distributions.CategoricalDistribution(list(d.args))
    finished = [r for r in rows if r["status"] == "TERMINATED" and r["complete"] and math.isfinite(r[METRIC])]
    if len(finished) < 4:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for r in finished:
        values = {d.key: r["config"][d.key] for d in dims}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=r[METRIC]))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _trial_number(path: str) -> int:
    """The trial's number in its directory name (`trainable_<id>_<number>_…`), its start order."""
    parts = Path(path).name.split("_")
    return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1 << 30


def _plot(rows: list[dict], default: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    done = [(i, r[METRIC]) for i, r in enumerate(rows) if r["complete"] and math.isfinite(r[METRIC])]
    stopped = [(i, r[METRIC]) for i, r in enumerate(rows) if not r["complete"] and math.isfinite(r[METRIC])]
    if done:
        ax.scatter(*zip(*done), s=12, label="ran to the end")
    if stopped:
        ax.scatter(*zip(*stopped), s=12, marker="x", label="stopped early by ASHA (last report)")
    if default is not None:
        ax.axhline(default, color="gray", linestyle="--", label="defaults (docs/agents.md)")
    ax.axhline(1.0, color="black", linewidth=0.8, label="static split")
    ax.set_xlabel("trial")
    ax.set_ylabel("miss rate / static split's")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _report(out: Path, rows: list[dict], dims, importances: dict, settings: dict) -> str:
    ok = [r for r in rows if r["complete"] and math.isfinite(r[METRIC])]
    best = min(ok, key=lambda r: r[METRIC]) if ok else None
    default = rows[0] if rows and rows[0]["complete"] else None
    lines = [
        "# CAVMem hyperparameter search",
        "",
        f"Command: `{settings['command']}`",
        "",
        f"Objective: {settings['objective']}",
        "",
        f"Trials: {len(rows)} ({len(ok)} ran to the end, "
        f"{sum(1 for r in rows if r['status'] == 'TERMINATED' and not r['complete'])} stopped early by ASHA, "
        f"{sum(1 for r in rows if r['status'] == 'ERROR')} failed). Wall time {settings['wall_s']:.0f} s.",
        "",
    ]
    if best is not None:
        spread = sorted(r[METRIC] for r in ok)
        q = lambda p: spread[min(len(spread) - 1, int(p * (len(spread) - 1) + 0.5))]
        lines += [
            f"Completed trials' objective: best {spread[0]:.3f}, quartiles {q(0.25):.3f} / {q(0.5):.3f} / {q(0.75):.3f}, worst {spread[-1]:.3f}.",
            "",
            "| key | defaults | best |",
            "|---|---|---|",
        ]
        for d in dims:
            dv = default["config"].get(d.key) if default else None
            lines.append(f"| `{d.key}` | {dv} | {best['config'][d.key]} |")
        lines += [
            f"| **objective** | {default[METRIC]:.3f} | **{best[METRIC]:.3f}** |" if default else
            f"| **objective** | – | **{best[METRIC]:.3f}** |",
            "",
            f"The best trial is `{best['trial_id']}`; `best.toml` holds its configuration.",
            "",
        ]
    if importances:
        lines += ["Parameter importances (Optuna's PED-ANOVA over the completed trials: how much each key's distribution differs between the best trials and the rest):", ""]
        lines += [f"- `{k}`: {v:.3f}" for k, v in importances.items()]
        lines.append("")
    lines += ["![trials](search.svg)", ""]
    return "\n".join(lines)


def _start(out: Path, setup: dict, resume: bool) -> dict | None:
    """Checks `out` for this study: a new one needs no study there; `resume` needs an
    unfinished one of the same setup. Returns the stored baselines when resuming."""
    state, finished = out / "setup.json", out / "study.json"
    if finished.exists():
        raise TrialFailed(f"{out} holds a finished study; choose another --out (a finished study is never replaced)")
    if not resume:
        if (out / "ray").exists() or state.exists():
            raise TrialFailed(f"{out} holds an unfinished study: --resume continues it, or choose another --out")
        return None
    if not state.exists():
        raise TrialFailed(f"{out}: no unfinished study to resume")
    stored = json.loads(state.read_text())
    if stored["setup"] != setup:
        raise TrialFailed(f"{out}: the unfinished study has another setup ({stored['setup']}); resume it with the same flags")
    return stored["baselines"]


def _tuner(obj: Objective, out: Path, dims, default_point: dict, *, trials: int, seed: int,
           cpus_per_trial: float, grace_episodes: int, resume: bool):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    trainable = tune.with_resources(_trainable(obj, out), {"cpu": cpus_per_trial})
    if resume:
        return tune.Tuner.restore(str(out / "ray" / "study"), trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    return tune.Tuner(
        trainable,
        param_space=space_mod.to_tune(dims),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="min",
            search_alg=OptunaSearch(points_to_evaluate=[default_point], seed=seed),
            scheduler=ASHAScheduler(time_attr="episode", max_t=obj.episodes,
                                    grace_period=grace_episodes, reduction_factor=3),
            num_samples=trials,
        ),
        run_config=tune.RunConfig(
            name="study",
            storage_path=str(out / "ray"),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            verbose=1,
        ),
    )


def run_study(*, space_file: Path, obj: Objective, trials: int, out: Path, address: str | None,
              seed: int, cpus_per_trial: float, grace_episodes: int, command: str,
              resume: bool = False) -> dict:
    """Runs the study (or, with `resume`, continues an interrupted one) and writes its
    outputs into `out`; returns the settings and best."""
    import ray

    out = out.resolve()
    dims = space_mod.load(space_file)
    defaults = params_mod.defaults(obj.cavmem)
    unknown = [d.key for d in dims if d.key not in defaults]
    if unknown:
        raise space_mod.SpaceError(f"{space_file}: not a `cavmem params` key: {', '.join(unknown)}")
    setup = {"space": [[d.key, d.kind, list(d.args)] for d in dims], "scenarios": [str(s) for s in obj.scenarios],
             "seeds": obj.seeds, "episodes": obj.episodes, "window": obj.window, "policy": obj.policy,
             "trials": trials, "sampler_seed": seed, "grace_episodes": grace_episodes}
    stored = _start(out, setup, resume)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    obj.baselines = stored if stored is not None else baselines(obj, out / "baselines")
    (out / "setup.json").write_text(json.dumps({"setup": setup, "baselines": obj.baselines}, indent=1))
    default_point = {d.key: defaults[d.key] for d in dims}
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        tuner = _tuner(obj, out, dims, default_point, trials=trials, seed=seed, cpus_per_trial=cpus_per_trial,
                       grace_episodes=grace_episodes, resume=resume)
        results = tuner.fit()
    finally:
        ray.shutdown()
    rows = []
    for r in results:
        m = r.metrics or {}
        rows.append({
            "trial_id": m.get("trial_id") or Path(r.path).name,
            "status": "ERROR" if r.error else "TERMINATED",
            "complete": bool(m.get("final")) and not r.error,
            "order": _trial_number(r.path),
            "episode": m.get("episode", 0),
            METRIC: float(m.get(METRIC, float("nan"))) if not r.error else float("nan"),
            "config": r.config,
            "error": str(r.error).splitlines()[0][:200] if r.error else "",
        })
    # In the order the trials started (the defaults, from points_to_evaluate, first).
    rows.sort(key=lambda r: r["order"])
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial_id", "status", "complete", "episode", METRIC, "error", *[d.key for d in dims]])
        for r in rows:
            w.writerow([r["trial_id"], r["status"], r["complete"], r["episode"], r[METRIC], r["error"],
                        *[r["config"].get(d.key) for d in dims]])
    ok = [r for r in rows if r["complete"] and math.isfinite(r[METRIC])]
    if not ok:
        raise TrialFailed(f"no trial ran to the end; see {out / 'trials.csv'}")
    best = min(ok, key=lambda r: r[METRIC])
    tmp = out / "best.toml.tmp"
    tmp.write_text(params_mod.to_toml(best["config"], header=(
        f"The best of {len(rows)} trials ({command}); objective {best[METRIC]:.4f}.\n"
        "Use: cavmem run|train|paper|suite --params best.toml")))
    os.replace(tmp, out / "best.toml")
    settings = {
        "command": command,
        "objective": (f"mean over {len(obj.scenarios)} scenario(s) × {len(obj.seeds)} seed(s) of the {obj.policy} run's "
                      f"miss rate over its last {obj.window} of {obj.episodes} episodes, divided by the static split's "
                      "(1 = the static split; lower is better)"),
        "scenarios": [str(s) for s in obj.scenarios], "seeds": obj.seeds, "episodes": obj.episodes,
        "window": obj.window, "trials": trials, "seed": seed, "baselines": obj.baselines,
        "wall_s": time.time() - started, "best": {"trial_id": best["trial_id"], METRIC: best[METRIC], "config": best["config"]},
    }
    (out / "study.json").write_text(json.dumps(settings, indent=1, default=str))
    default = rows[0][METRIC] if rows[0]["complete"] else None
    _plot(rows, default, out / "search.svg")
    (out / "report.md").write_text(_report(out, rows, dims, _importances(rows, dims), settings))
    return settings
