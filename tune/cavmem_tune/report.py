"""A finished study's outputs: trials.csv, best.toml, study.json, search.svg and report.md."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from . import params as params_mod
from . import space as space_mod
from .trial import TrialFailed

METRIC = "normalized_miss"


def importances(rows: list[dict], dims: list[space_mod.Dimension]) -> dict[str, float]:
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


def plot(rows: list[dict], default: float | None, path: Path) -> None:
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


def report_text(out: Path, rows: list[dict], dims, importances: dict, settings: dict) -> str:
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
        f"{sum(1 for r in rows if r['status'] == 'ERROR')} failed, "
        f"{sum(1 for r in rows if r['status'] == 'NOT RUN')} never reported (cut off by an interruption))."
        + (f" Wall time {settings['wall_s']:.0f} s." if math.isfinite(settings["wall_s"]) else ""),
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


def _trial_number(path: str) -> int:
    """The trial's number in its directory name (`trainable_<id>_<number>_…`), its start order."""
    parts = Path(path).name.split("_")
    return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1 << 30


def rows_of(results) -> list[dict]:
    """One row per trial of Ray Tune's results, in the order the trials started."""
    rows = []
    for r in results:
        m = r.metrics or {}
        rows.append({
            "trial_id": m.get("trial_id") or Path(r.path).name,
            "status": "ERROR" if r.error else "TERMINATED" if METRIC in m else "NOT RUN",
            "complete": bool(m.get("final")) and not r.error,
            "order": _trial_number(r.path),
            "episode": m.get("episode", 0),
            METRIC: float(m.get(METRIC, float("nan"))) if not r.error else float("nan"),
            "config": r.config or {},
            "error": str(r.error).splitlines()[0][:200] if r.error else "",
        })
    rows.sort(key=lambda r: r["order"])
    return rows


def from_records(out: Path):
    """Ray Tune's results of the study in `out`, read from its records (`out/ray/study`)."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    return ResultGrid(ExperimentAnalysis(str(out / "ray" / "study")))


def write(out: Path, rows: list[dict], dims: list[space_mod.Dimension], settings: dict) -> dict:
    """Writes every output of the study into `out` (best.toml atomically); returns `settings`
    with the best trial added.

    Raises :class:`TrialFailed` when no trial ran to the end."""
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
        f"The best of {len(rows)} trials ({settings['command']}); objective {best[METRIC]:.4f}.\n"
        "Use: cavmem run|train|paper|suite --params best.toml")))
    os.replace(tmp, out / "best.toml")
    settings = {**settings, "best": {"trial_id": best["trial_id"], METRIC: best[METRIC], "config": best["config"]}}
    (out / "study.json").write_text(json.dumps(settings, indent=1, default=str))
    default = rows[0][METRIC] if rows[0]["complete"] else None
    plot(rows, default, out / "search.svg")
    (out / "report.md").write_text(report_text(out, rows, dims, importances(rows, dims), settings))
    return settings
