"""The study: Ray Tune with Optuna's TPE sampler (OptunaSearch) and ASHA early stopping.

Each trial is :func:`cavmem_tune.trial.evaluate` of one configuration; the study's first
trial is the defaults (`cavmem params`), so the report compares the best with them. A trial
that fails is recorded as failed (``ERROR`` in trials.csv) and the study goes on. Besides
:mod:`cavmem_tune.report`'s outputs, `out` holds ``setup.json`` (the flags and the static
baselines, for ``--resume``), ``ray/`` (Ray Tune's records) and ``trials/`` (the runs).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import params as params_mod
from . import report
from . import space as space_mod
from .report import METRIC
from .trial import Objective, TrialFailed, baselines, evaluate


def _objective_text(setup: dict) -> str:
    return (f"mean over {len(setup['scenarios'])} scenario(s) × {len(setup['seeds'])} seed(s) of the "
            f"{setup['policy']} run's miss rate over its last {setup['window']} of {setup['episodes']} "
            "episodes, divided by the static split's (1 = the static split; lower is better)")


def _trainable(obj: Objective, root: Path):
    from ray import tune

    def trainable(config: dict) -> None:
        trial_id = tune.get_context().get_trial_id()
        evaluate(config, obj, root / "trials" / trial_id, tune.report)

    return trainable


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
        # Trials that errored stay errored (OptunaSearch cannot take a restarted trial back;
        # a trial cut off by the interruption is recorded as failed, with its error).
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
    return report.write(out, report.rows_of(results), dims, {
        "command": command,
        "objective": _objective_text(setup),
        **setup,
        "baselines": obj.baselines,
        "wall_s": time.time() - started,
    })


def report_only(*, out: Path, command: str) -> dict:
    """Writes the outputs of the study in `out` from its records, running nothing: for a
    study that cannot go on (its records name trials the sampler no longer knows, or its
    cluster is gone for good). The trials that did not report are listed as not run."""
    out = out.resolve()
    state = out / "setup.json"
    if (out / "study.json").exists():
        raise TrialFailed(f"{out} holds a finished study; its outputs are written")
    if not state.exists():
        raise TrialFailed(f"{out}: no study records (setup.json)")
    stored = json.loads(state.read_text())
    setup = stored["setup"]
    dims = [space_mod.Dimension(key, kind, tuple(args)) for key, kind, args in setup["space"]]
    return report.write(out, report.rows_of(report.from_records(out)), dims, {
        "command": command,
        "objective": _objective_text(setup),
        **setup,
        "baselines": stored["baselines"],
        "wall_s": float("nan"),
    })
