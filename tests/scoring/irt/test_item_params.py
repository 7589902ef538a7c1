"""Which calibrated versions stay off assessment forms: class C DIF until an editor's review,
and only while the review still matches what the latest calibration found."""

from __future__ import annotations

from typing import Any

from question_bank.item_params import dif_finding, params_from


def calibrated(dif: dict[str, Any] | None, review: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"a": 1.1, "b": 0.2, "model": "2pl", "dif": dif}
    if review is not None:
        doc["dif_review"] = review
    return doc


ELDERLY_C = {"class": "C", "groups": {"elderly": {"class": "C"}, "gender": {"class": "A"}}}
AGE_C = {"class": "C", "groups": {"elderly": {"class": "A"}, "age_60_plus": {"class": "C"}}}


def test_class_c_is_held_until_reviewed_and_a_keep_releases_it() -> None:
    assert params_from(calibrated(ELDERLY_C)).held_from_assessment
    assert not params_from(calibrated({"class": "B", "groups": {}})).held_from_assessment
    keep = {"decision": "keep", "finding": dif_finding(ELDERLY_C)}
    assert not params_from(calibrated(ELDERLY_C, keep)).held_from_assessment
    exclude = {"decision": "exclude", "finding": dif_finding({"class": "A", "groups": {}})}
    assert params_from(calibrated({"class": "A", "groups": {}}, exclude)).held_from_assessment


def test_a_review_of_another_finding_does_not_stand() -> None:
    keep_for_elderly = {"decision": "keep", "finding": dif_finding(ELDERLY_C)}
    # The next calibration finds the item biased against another group: held again.
    assert params_from(calibrated(AGE_C, keep_for_elderly)).held_from_assessment
    # A review written before findings were recorded does not stand either.
    assert params_from(calibrated(ELDERLY_C, {"decision": "keep"})).held_from_assessment
