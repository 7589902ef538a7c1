"""Suppression of the township × group table: no withheld cell follows from a published
margin minus its published neighbours."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scoring.statistics.estimation import MIN_PUBLISHED
from scoring.statistics.report import suppress_table


def check_lines(counts: np.ndarray, hidden: np.ndarray) -> None:
    for lines, n in ((hidden, counts), (hidden.T, counts.T)):
        for line, values in zip(lines, n, strict=True):
            withheld = line & (values > 0)
            if withheld.any():
                assert withheld.sum() >= 2 or not (~line & (values > 0)).any()
                assert values[withheld].sum() >= MIN_PUBLISHED or not (~line & (values > 0)).any()


@given(
    arrays(np.int64, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=st.integers(0, 40))
)
def test_table_suppression_leaves_no_cell_alone(counts: np.ndarray) -> None:
    hidden = suppress_table(counts)
    assert np.all(hidden[counts < MIN_PUBLISHED])
    check_lines(counts, hidden)


def test_a_small_cell_takes_a_neighbour_in_its_row_and_column() -> None:
    counts = np.array([[4, 30, 25], [40, 35, 50], [33, 12, 60]])
    hidden = suppress_table(counts)
    assert hidden[0, 0]
    assert hidden[0].sum() >= 2 and hidden[:, 0].sum() >= 2
    check_lines(counts, hidden)
