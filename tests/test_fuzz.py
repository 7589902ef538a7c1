"""Fuzzing, short version (`make fuzz` runs the long one, scripts/fuzz.py).

schemathesis drives the running service from its own OpenAPI document once per role
(resident with a profile, editor, analyst, admin) and once without a token: positive and
negative cases for every operation. Asserted: no server error in any response or in the app
log, every response conforms to the document (status declared for that route, schema,
content type, headers), invalid data is refused, and at least 1,000 requests were made."""

from __future__ import annotations

import pytest

from scripts import fuzz

SHORT = fuzz.Config(examples=3, min_requests=1_000, label="fuzz-test")


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_response_off_the_contract() -> None:
    lines: list[str] = []
    report = fuzz.run(SHORT, say=lines.append)
    summary = "\n".join([*lines, report.format()])
    assert {run.caller for run in report.runs} == {*fuzz.ROLES, fuzz.ANONYMOUS}, summary
    assert all(run.operations > 0 for run in report.runs), summary
    assert report.requests >= SHORT.min_requests, summary
    assert not report.server_errors, summary
    assert not report.undeclared, summary
    violations = report.violations(SHORT.min_requests)
    assert violations == [], summary + "\n" + "\n".join(violations)
