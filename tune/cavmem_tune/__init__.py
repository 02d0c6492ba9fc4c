"""Searches and sharded grids of CAVMem's harness (`cavmem`) on Ray.

- :mod:`cavmem_tune.space`: a search space file (TOML) as Ray Tune distributions.
- :mod:`cavmem_tune.params`: a configuration as a `--params` file for `cavmem`.
- :mod:`cavmem_tune.trial`: one trial: `cavmem run` processes, their JSON lines reported to Tune.
- :mod:`cavmem_tune.search`: the study (OptunaSearch's TPE, ASHA) and its report.
- :mod:`cavmem_tune.grid`: `cavmem paper|suite` in shards as Ray tasks, merged at the end.
"""
