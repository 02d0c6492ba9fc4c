"""On a Ray cluster (CI starts one: `ray start --head`; RAY_ADDRESS=auto): a tiny study with
a trial whose cavmem is killed, and a 4-shard grid merged, equal to the one-process grid."""

import csv
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from cavmem_tune.__main__ import main

pytestmark = pytest.mark.ray
ADDRESS = os.environ.get("RAY_ADDRESS", "auto")


def killer(tmp_path, cavmem):
    """A cavmem that kills itself (SIGKILL) on its 3rd `--params` run, else runs cavmem."""
    script = tmp_path / "cavmem-killer"
    count = tmp_path / "count"
    script.write_text(f"""#!/bin/sh
case "$*" in *--params*)
  n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
  [ $n -eq 3 ] && kill -KILL $$ ;;
esac
exec {cavmem} "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_a_tiny_study_survives_a_killed_trial_and_writes_valid_params(tmp_path, cavmem, repo):
    out = tmp_path / "study"
    status = main(["search", "--space", str(repo / "tune/spaces/ddpg.toml"),
                   "--scenarios", str(repo / "harness/scenarios/s2.toml"), "--seeds", "0",
                   "--trials", "5", "--episodes", "20", "--window", "5", "--grace", "10",
                   "--out", str(out), "--address", ADDRESS, "--cavmem", str(killer(tmp_path, cavmem))])
    assert status == 0
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 5, rows
    failed = [r for r in rows if r["status"] == "ERROR"]
    assert len(failed) == 1, rows
    assert rows[0]["ddpg.actor_lr"] == "0.0001", "the defaults are the first trial"
    study = json.loads((out / "study.json").read_text())
    assert study["best"]["normalized_miss"] > 0
    for f in ["report.md", "search.svg", "best.toml"]:
        assert (out / f).stat().st_size > 0, f
    check = subprocess.run([str(cavmem), "run", str(repo / "harness/scenarios/s1.toml"), "--episodes", "1",
                            "--params", str(out / "best.toml"), "--out", str(tmp_path / "check")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # A finished study is never replaced.
    assert main(["search", "--space", str(repo / "tune/spaces/ddpg.toml"),
                 "--scenarios", str(repo / "harness/scenarios/s2.toml"), "--trials", "1",
                 "--out", str(out), "--cavmem", str(cavmem)]) == 2


def _cells(d):
    out = {}
    for f in sorted((d / "cells").iterdir()):
        result = json.loads(f.read_text())["result"]
        result["wall_s"] = 0
        for r in result["records"]:
            r["overhead_s"] = 0
        out[f.name] = result
    return out


def test_a_sharded_grid_on_ray_equals_one_process(tmp_path, cavmem):
    args = ["--quick", "--seeds", "1", "--formulation", "raw"]
    single = tmp_path / "single"
    subprocess.run([str(cavmem), "paper", *args, "--out", str(single)], check=True, capture_output=True)
    assert main(["grid", "paper", "--shards", "4", "--out", str(tmp_path / "grid"), "--address", ADDRESS,
                 "--cavmem", str(cavmem), "--", *args]) == 0
    merged = tmp_path / "grid" / "merged"
    assert _cells(merged) == _cells(single)
    summary = lambda d: [
        {k: v for k, v in r.items() if not k.startswith("overhead_s") and k != "per_seed"}
        for r in json.loads((d / "summary.json").read_text())["results"]
    ]
    assert summary(merged) == summary(single)
    for i in range(4):
        assert not (tmp_path / "grid" / f"shard-{i}" / "summary.json").exists()


def test_an_interrupted_study_resumes(tmp_path, cavmem, repo):
    """The driver killed mid-study; `--resume` with the same flags finishes it, and the
    same flags without it are refused."""
    import signal
    import time

    out = tmp_path / "study"
    flags = ["search", "--space", str(repo / "tune/spaces/ddpg.toml"),
             "--scenarios", str(repo / "harness/scenarios/s2.toml"), "--seeds", "0", "--trials", "6",
             "--episodes", "200", "--window", "20", "--out", str(out), "--address", ADDRESS,
             "--cavmem", str(cavmem)]
    driver = subprocess.Popen([sys.executable, "-m", "cavmem_tune", *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "trials").exists():
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not (out / "study.json").exists(), "interrupted before the end"
    assert main(flags) == 2, "an unfinished study is not started over"
    # `report` summarizes what an unfinished study's records hold, running nothing.
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    status = main(["report", "--out", str(partial)])
    rows = list(csv.DictReader(open(partial / "trials.csv")))
    assert 1 <= len(rows) <= 6, rows
    # best.toml exactly when a trial had run to the end (else: an error saying none did).
    assert (status == 0) == (partial / "best.toml").exists() == any(r["complete"] == "True" for r in rows), rows
    assert main([*flags, "--resume"]) == 0
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 6 and all(r["status"] == "TERMINATED" for r in rows), rows
    assert main([*flags, "--resume"]) == 2, "a finished study is not resumed"
    assert main(["report", "--out", str(out)]) == 2, "a finished study's outputs are not rewritten"
