"""`cavmem paper|suite` as Ray tasks, one per shard (`--shard I/N`), merged with `--from`.

Each task runs one shard into `out/shard-I` (a task that fails is retried once, and its
finished cells are kept: the retry resumes); the merge then runs on this machine into
`out/merged`, giving the summary, report and figures of the single-process run. On a
cluster the shards' directories must be on storage every node and this machine see.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _shard(cavmem: str, command: str, args: list[str], out: str, index: int, count: int) -> dict:
    cmd = [cavmem, command, *args, "--shard", f"{index}/{count}", "--out", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"shard {index}/{count}: {' '.join(cmd)}: exit status {p.returncode}: {p.stderr.strip()[-500:]}")
    return {"shard": index, "out": out}


def run_grid(*, cavmem: Path, command: str, args: list[str], shards: int, out: Path,
             address: str | None, cpus_per_shard: float) -> Path:
    """Runs the grid in `shards` Ray tasks and merges it; returns the merged directory."""
    import ray

    if command not in ("paper", "suite"):
        raise ValueError(f"{command}: the grid commands are paper and suite")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dirs = [str(out / f"shard-{i}") for i in range(shards)]
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=cpus_per_shard, max_retries=1, retry_exceptions=True)(_shard)
        done = ray.get([task.remote(str(cavmem), command, args, d, i, shards) for i, d in enumerate(dirs)])
    finally:
        ray.shutdown()
    assert sorted(d["shard"] for d in done) == list(range(shards))
    merged = out / "merged"
    subprocess.run([str(cavmem), command, *args, "--from", *dirs, "--out", str(merged)], check=True)
    return merged
