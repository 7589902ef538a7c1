"""Reading a helper's sheet of filled paper forms: columns, letters, dates, row problems."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from scoring.assisted.sheets import MAX_ROWS, read_sheet
from server.kernel.errors import PayloadTooLarge, ValidationFailed

HEADER = ["表单编号", "居民编号", "1", "第2题", "3", "作答日期"]


def test_letters_are_read_loosely_and_blank_cells_are_unanswered() -> None:
    sheet = read_sheet(
        [
            HEADER,
            ["pf-7k3m-9qxd", "k7m4 qx9a", "a", "A、c", "", "2026/12/03"],
            ["PF-AAAA-AAAA", "CCCC-DDDD", "对", "×", "b,d", datetime(2026, 12, 4, 9, 30)],
            [None, None, None, None, None, None],
        ]
    )
    assert sheet.errors == []
    first, second = sheet.rows
    assert first.form_code == "PF-7K3M-9QXD" and first.resident_code == "K7M4QX9A"
    assert first.answers == {1: ("A",), 2: ("A", "C")} and first.answered_on == date(2026, 12, 3)
    assert second.answers == {1: ("A",), 2: ("B",), 3: ("B", "D")}
    assert second.answered_on == date(2026, 12, 4) and second.row == 3


def test_each_problem_is_reported_by_row_and_column() -> None:
    sheet = read_sheet(
        [
            HEADER,
            ["", "CCCC-DDDD", "A", "", "", ""],
            ["PF-AAAA-AAAA", "CCCC-DDDD", "G", "A", "", "昨天"],
            ["PF-AAAA-AAAA", "CCCC-DDDD", "", "", "", ""],
            ["PF-BBBB-BBBB", "CCCC-DDDD", "B", "", "", ""],
        ]
    )
    assert [(e["row"], e["field"]) for e in sheet.errors] == [
        (2, "表单编号"),
        (3, "1"),
        (3, "作答日期"),
        (4, "答案"),
    ]
    assert all(e["message"] for e in sheet.errors)
    assert [r.row for r in sheet.rows] == [5]


def test_a_sheet_without_its_columns_is_refused_whole() -> None:
    for rows in ([], [["居民编号", "1"]], [["表单编号", "居民编号", "姓名"]]):
        with pytest.raises(ValidationFailed):
            read_sheet(rows)


def test_too_many_rows_is_refused() -> None:
    rows = [HEADER] + [["PF-AAAA-AAAA", "CCCC-DDDD", "A", "", "", ""]] * (MAX_ROWS + 1)
    with pytest.raises(PayloadTooLarge):
        read_sheet(rows)


def test_form_codes_typed_loosely_and_duplicate_question_columns() -> None:
    from scoring.assisted.sheets import normalise_form_code

    for typed in ("pf7k3m9qxd", "7K3M-9QXD", "PF－7K3M－9QXD", " pf-7k3m-9qxd "):
        assert normalise_form_code(typed) == "PF-7K3M-9QXD", typed
    with pytest.raises(ValidationFailed):
        read_sheet([["表单编号", "居民编号", "1", "第1题"]])
