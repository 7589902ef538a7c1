"""Fault injection, short version (`make chaos` runs the long one, scripts/chaos.py).

Two `python -m server serve` processes on the same durable database server and Redis take a
storm of submits (retried with the same body until a 200 or a final 4xx) while Redis is
SIGKILLed and started again, and then the database server. Afterwards: every 200 is stored
exactly once, a replay returns the first 200 unchanged, the boards equal what the stored
attempts add up to, no 5xx but 503, no request without an answer within 15 s."""

from __future__ import annotations

import pytest

from scripts import chaos

SHORT = chaos.Config(
    seconds=30,
    kills=1,
    residents=30,
    clients=10,
    readers=2,
    rate=15,  # a few hundred submits on a shared 2-core machine
    wipe_redis="always",  # Redis comes back empty: sessions from MongoDB, boards rebuilt
    settle_seconds=40,
    label="chaos-test",
    keep_logs=False,  # kept (paths in the failure message) only when an invariant fails
)


@pytest.mark.timeout(240)
def test_two_apps_survive_sigkill_of_redis_and_of_the_database() -> None:
    lines: list[str] = []
    report = chaos.run(SHORT, say=lines.append)
    summary = "\n".join([*lines, report.format()])
    figures = report.figures
    assert figures["kills_redis"] == 1 and figures["kills_db"] == 1, summary
    assert figures["acknowledged"] >= 100, f"too few submits acknowledged to judge\n{summary}"
    assert figures["lost"] == 0, f"acknowledged submits not stored\n{summary}"
    assert figures["duplicated"] == 0, f"submits stored more than once\n{summary}"
    assert figures["replays_differing"] == 0, f"replays differ from the first 200\n{summary}"
    assert not figures["other_5xx"], f"5xx other than 503\n{summary}"
    assert figures["hangs"] == 0, f"requests without an answer within 15 s\n{summary}"
    assert report.violations == [], summary
