"""Smoke test of scripts.eval_irt: every acceptance scenario at the reduced `--quick` sizes
meets the targets the script prints, and main's exit status and report say so."""

from __future__ import annotations

import re

import pytest

from scripts.eval_irt import QUICK, main, run_all

SEED = 2026


def test_every_scenario_meets_its_targets_at_quick_sizes() -> None:
    results = run_all(QUICK, SEED)
    assert [r.title.split(".")[0] for r in results] == ["1", "2", "3", "4", "5", "6"]
    assert all(r.targets for r in results)
    missed = [(r.title, f.label, f.value, f.target) for r in results for f in r.missed]
    assert missed == []


def test_main_prints_the_table_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--seed", str(SEED)]) == 0
    out = capsys.readouterr().out
    met = re.search(r"^all (\d+) targets met", out, re.MULTILINE)
    assert met is not None, out
    assert out.count("✓") == int(met.group(1)) >= 14
    assert "✗" not in out
