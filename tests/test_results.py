"""Every committed benchmark row can be rerun: it records its command, the git commit of the code, the machine,
and the resolved config (or says why it has none)."""

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def rows(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_results_row_records_command_commit_machine_and_config(path):
    for i, row in enumerate(rows(path)):
        where = f"{path.name} row {i}"
        assert row.get("command") and row.get("git_commit") and row.get("machine", {}).get("cpu"), where
        configs = [r.get("config_resolved") for r in row.get("rows", [row])]
        assert all(c is not None for c in configs) or row.get("config_note"), where
        for config in configs:
            if config is not None:
                assert set(config) == {"data", "model", "solver", "train"}, where
