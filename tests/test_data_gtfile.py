"""Ground-truth / flag file parsing: property-based round trips and rejection of malformed lines."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrack.data.gtfile import format_boxes, parse_boxes, parse_flags, read_boxes, write_boxes
from edgetrack.errors import DataError

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
box = st.one_of(st.tuples(finite, finite, size, size), st.just((math.nan,) * 4))
boxes = st.lists(box, min_size=1, max_size=30)
separators = st.sampled_from([",", "\t", " ", ", ", " ,\t", "  "])


def _line(row, sep: str) -> str:
    return sep.join("NaN" if math.isnan(v) else repr(v) for v in row)


@settings(max_examples=150, deadline=None)
@given(boxes, separators, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_round_trip_through_every_separator(rows, sep, newline, trailing_blank):
    text = newline.join(_line(r, sep) for r in rows) + (newline * 2 if trailing_blank else "")
    parsed = parse_boxes(text, "gt.txt")
    np.testing.assert_array_equal(parsed, np.array(rows, dtype=np.float64))


@settings(max_examples=60, deadline=None)
@given(boxes)
def test_format_then_parse_keeps_values_to_the_written_precision(rows):
    arr = np.array(rows, dtype=np.float64)
    back = parse_boxes(format_boxes(arr, "%.6f"))
    np.testing.assert_allclose(back, np.round(arr, 6), rtol=0, atol=1e-6)
    assert np.array_equal(np.isnan(back), np.isnan(arr))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(finite, finite, size, size), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=7),
    st.sampled_from(["3 values", "5 values", "word", "inf", "blank"]),
)
def test_malformed_line_is_rejected_with_its_line_number(rows, bad_at, kind):
    lines = [_line(r, ",") for r in rows]
    bad_at = min(bad_at, len(lines) - 1)
    bad = {"3 values": "1,2,3", "5 values": "1,2,3,4,5", "word": "1,2,abc,4", "inf": "1,inf,3,4", "blank": ""}
    lines.insert(bad_at, bad[kind])
    with pytest.raises(DataError, match=rf"gt\.txt, line {bad_at + 1}\b"):
        parse_boxes("\n".join(lines) + "\n1,2,3,4\n", "gt.txt")


def test_partial_nan_row_becomes_fully_absent():
    gt = parse_boxes("1,2,3,4\nNaN,5,6,7\nnan nan nan nan\n")
    assert np.isnan(gt[1]).all() and np.isnan(gt[2]).all()
    np.testing.assert_array_equal(gt[0], [1, 2, 3, 4])


def test_read_boxes_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_boxes(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="no boxes"):
        read_boxes(tmp_path / "empty.txt")
    path = write_boxes(tmp_path / "sub" / "b.txt", np.array([[1.5, 2, 3, 4], [np.nan] * 4]))
    np.testing.assert_array_equal(read_boxes(path)[0], [1.5, 2, 3, 4])
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_flags():
    np.testing.assert_array_equal(parse_flags("1,0,1"), [True, False, True])
    np.testing.assert_array_equal(parse_flags("0\n1\n"), [False, True])
    with pytest.raises(DataError, match="value 2"):
        parse_flags("1,2")


@pytest.mark.parametrize("row, match", [("10,10,-5,20", "negative width or height"),
                                        ("10,10,5,-0.5", "negative width or height"),
                                        ("1e300,1e300,1e300,1e300", "beyond 1e\\+06 pixels"),
                                        ("10,10,1e300,20", "beyond")])
def test_rows_no_score_can_use_are_refused_naming_file_and_line(row, match, tmp_path):
    import warnings

    path = tmp_path / "groundtruth_rect.txt"
    path.write_text(f"1,2,3,4\n{row}\n5,6,7,8\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(DataError, match=match) as info:
            read_boxes(path)
    assert f"{path}, line 2" in str(info.value)
