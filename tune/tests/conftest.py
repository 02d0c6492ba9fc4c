"""Shared fixtures: the cavmem executable (CAVMEM, or the workspace's release build)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cavmem() -> Path:
    path = Path(os.environ.get("CAVMEM", REPO / "target/release/cavmem"))
    if not path.is_file():
        pytest.fail(f"{path}: build it with cargo build --release -p cavmem-harness, or set CAVMEM")
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
