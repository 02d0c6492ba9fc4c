"""Space files and params files, without Ray."""

import subprocess
import sys

import pytest

from cavmem_tune import params, space

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def test_the_shipped_space_loads_and_names_only_cavmem_keys(repo, cavmem):
    dims = space.load(repo / "tune/spaces/ddpg.toml")
    defaults = params.defaults(cavmem)
    assert len(dims) >= 8
    for d in dims:
        assert d.key in defaults, d.key
        assert d.contains(defaults[d.key]), f"{d.key}: the default {defaults[d.key]} lies outside {d.args}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[ddpg.actor_lr]\nloguniform = [0, 1]\n", "must be above 0"),
        ("[ddpg.actor_lr]\nuniform = [1, 1]\n", "is not below"),
        ("[ddpg.actor_lr]\nnormal = [0, 1]\n", "ddpg.actor_lr.normal: a table with one of"),
        ("[ddpg.actor_lr]\nuniform = [0, 1]\nrandint = [0, 1]\n", "exactly one of"),
        ("[ddpg.learn_starts]\nrandint = [64, 2048.5]\n", "two integers"),
        ("[ddpg]\nactor_lr = 3\n", "a table with one of"),
        ("", "no dimension"),
        ("[ddpg\n", "Expected"),
    ],
)
def test_bad_spaces_name_the_key(tmp_path, text, message):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(space.SpaceError, match=message):
        space.load(f)


def test_a_configuration_is_a_params_file_cavmem_accepts(tmp_path, cavmem, repo):
    config = {"ddpg.actor_lr": 3e-4, "ddpg.ou.theta": 0.2, "epsilon.anneal": "linear",
              "dqn.action_bids": [-0.5, 0.0, 0.5], "ddpg.learn_starts": 128}
    text = params.to_toml(config, header="a test")
    assert params.flatten(tomllib.loads(text)) == config
    f = tmp_path / "p.toml"
    f.write_text(text)
    run = subprocess.run([str(cavmem), "run", str(repo / "harness/scenarios/s2.toml"), "--episodes", "1",
                          "--params", str(f), "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    f.write_text(params.to_toml({"ddpg.actor_lr": 5.0}))
    bad = subprocess.run([str(cavmem), "run", str(repo / "harness/scenarios/s2.toml"), "--episodes", "1",
                          "--params", str(f)], capture_output=True, text=True)
    assert bad.returncode == 2 and "ddpg.actor_lr: 5 is outside (0, 1]" in bad.stderr, bad.stderr
