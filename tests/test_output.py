"""Reports written a chunk at a time read the same as when written at once; where they go."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from pipelines.cli.context import CommandFailed
from pipelines.cli.output import OutputFormat, _write_csv, _write_json, render, written_to

ROWS = [
    {"session_id": f"s-{n}", "cost_usd": Decimal(n) / 7, "note": None if n % 2 else "a\nb",
     "tokens": n * 1000, "occurred_at": datetime(2026, 10, 3, n % 24, tzinfo=UTC).isoformat()}
    for n in range(7)
]  # fmt: skip


@pytest.mark.parametrize("count", [0, 1, 3, 6, 7])
def test_json_written_in_chunks_is_one_indented_array(count, capsys):
    _write_json(iter(ROWS[:count]), chunk_rows=3)
    expected = orjson.dumps(ROWS[:count], default=str, option=orjson.OPT_INDENT_2).decode()
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("count", [0, 1, 3, 6, 7])
def test_csv_written_in_chunks_is_one_table(count, capsys):
    columns = ["session_id", "cost_usd", "note", "tokens"]
    _write_csv(iter(ROWS[:count]), columns, chunk_rows=3)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(ROWS[:count])
    assert capsys.readouterr().out == buffer.getvalue()


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_text(capsys):
    """An issue title is anyone's to write upstream: `=HYPERLINK(...)` would be a live
    formula in the spreadsheet finance opens the cost report in."""
    rows = [{"issue_title": "=HYPERLINK(\"http://x\",\"ok\")", "project": "+1 web",
             "agent": "@ops", "model": "-cmd", "note": "\tlead", "session_id": "s-1",
             "cost_usd": Decimal("-0.5"), "tokens": -3, "day": "2026-10-03"}]  # fmt: skip
    _write_csv(iter(rows), list(rows[0]))
    (read,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert read == {"issue_title": "'=HYPERLINK(\"http://x\",\"ok\")", "project": "'+1 web",
                    "agent": "'@ops", "model": "'-cmd", "note": "'\tlead", "session_id": "s-1",
                    "cost_usd": "-0.5", "tokens": "-3", "day": "2026-10-03"}  # fmt: skip


def test_decimals_are_fixed_point_text_in_json_and_csv(capsys):
    """str() of a zero of scale 12 is "0E-12" (a subscription's billed cost, a display-mode
    cost), and of any amount below a millionth an exponent too."""
    row = {"cost_usd": Decimal("0E-12"), "tiny": Decimal("8.0000E-8"),
           "big": Decimal("1234.500000000000")}  # fmt: skip
    fixed = {"cost_usd": "0.000000000000", "tiny": "0.000000080000", "big": "1234.500000000000"}
    render([row], OutputFormat.json, columns=list(row))
    assert orjson.loads(capsys.readouterr().out) == [fixed]
    render([row], OutputFormat.csv, columns=list(row))
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out))) == [fixed]


def test_render_takes_a_generator_in_every_format(capsys):
    for fmt in OutputFormat:
        render((row for row in ROWS), fmt, title="rows")
        out = capsys.readouterr().out
        assert "s-6" in out and out.count("s-") == len(ROWS)


def test_an_output_under_a_file_names_the_file_in_the_way(tmp_path):
    """mkdir says "File exists" when a file stands where a directory must be."""
    (tmp_path / "report").write_text("not a directory")
    for target in (tmp_path / "report" / "costs.html", tmp_path / "report" / "d" / "costs.html"):
        with pytest.raises(CommandFailed) as failure, written_to(target):
            pass
        blocker = tmp_path / "report"
        assert str(failure.value) == f"cannot write {target}: {blocker} is not a directory"


def test_a_table_wider_than_the_screen_cuts_text_never_ids_or_numbers(capsys):
    """`tally rejects` beside a long reason and excerpt once showed an id column squeezed to
    nothing; a cost cut to "12,345.6…" would read as another number."""
    rows = [{"id": 987654, "source": "claude_code", "reason": "invalid JSON: " + "x" * 300,
             "excerpt": "{" + "y" * 300, "cost_usd": Decimal("12345.678901"),
             "tokens": 1_234_567_890}]  # fmt: skip
    render(rows, OutputFormat.table, title="rejected records")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 220  # the text gave way
    assert "987,654" in out and "12,345.6789" in out and "1,234,567,890" in out
    assert "claude_code" in out


def test_a_table_that_cannot_fit_is_printed_whole_past_the_edge(capsys):
    """Narrower than its columns at their narrowest, rich took the same width from every
    column: the month of a cost table in a 100-column terminal vanished."""
    row = {"month": "2026-10", **{f"tokens_{n}": 1_000_000_000 + n for n in range(20)}}
    render([row], OutputFormat.table, title="cost by month")
    out = capsys.readouterr().out
    assert "2026-10" in out and all(f"1,000,000,0{n:02d}" in out for n in range(20))
    assert len({len(line) for line in out.splitlines()[1:]}) == 1  # one line per row, whole


def test_a_name_too_long_for_its_column_is_folded_never_cut(capsys):
    """A cost table by model wider than the screen showed "claude-sonnet-4-2…": which of
    claude-sonnet-4-20250514 and claude-sonnet-4-5-20250929 it was, the reader could not
    tell. Names carry no spaces to wrap at, so they fold onto the next line instead."""
    models = ["claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"]
    rows = [{"model": model, **{f"tokens_{n}": 1_000_000_000 + n for n in range(12)},
             "pricing_status": "priced"} for model in models]  # fmt: skip
    render(rows, OutputFormat.table, title="cost by model")
    out = capsys.readouterr().out
    assert "…" not in out
    cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert "".join(cells) == "".join(models)  # every character, in order, across lines
