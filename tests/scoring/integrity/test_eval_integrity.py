"""Smoke test of scripts.eval_integrity: the quick county meets every target the script prints
(precision ≥ 0.9 and recall ≥ 0.8 per detector, false flags ≤ 1 %, the 85 % rule worse), and
main's exit status and report say so."""

from __future__ import annotations

import re

import pytest

from scripts.eval_integrity import main

SEED = 2026


def test_main_prints_the_table_and_meets_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--seed", str(SEED)]) == 0
    out = capsys.readouterr().out
    met = re.search(r"^all (\d+) targets met", out, re.MULTILINE)
    assert met is not None, out
    assert out.count("✓") == int(met.group(1)) >= 20
    assert "✗" not in out
    for code in ("speeding", "impossible_perfect", "copying", "shared_device", "straight_lining"):
        assert re.search(rf"✓ {code}: recall", out), code
    assert "85 % rule: false flags" in out
