"""The line reader: complete lines only, exact offsets, oversize lines skipped in bounded memory."""

from __future__ import annotations

from ingestion.lines import LineReader, OversizeLine


def read(path, start=0, limit=1 << 20):
    with open(path, "rb") as handle:
        reader = LineReader(handle, start, limit)
        items = list(reader)
    return items, reader.end_offset


def test_partial_last_line_is_left_for_later(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    items, end = read(path)
    assert items == [(0, b'{"a":1}'), (8, b'{"b":2}')]
    assert end == 16
    with open(path, "ab") as handle:
        handle.write(b"3}\n")
    items, end = read(path, end)
    assert items == [(16, b'{"c":3}')] and end == 24


def test_oversize_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "f.jsonl"
    big = b'{"x":"' + b"y" * 50_000 + b'"}'
    path.write_bytes(b'{"a":1}\n' + big + b'\n{"b":2}\n')
    items, end = read(path, limit=10_000)
    assert items[0] == (0, b'{"a":1}')
    assert isinstance(items[1], OversizeLine)
    assert items[1].offset == 8 and items[1].length == len(big) + 1
    assert items[2] == (8 + len(big) + 1, b'{"b":2}')
    assert end == path.stat().st_size


def test_oversize_line_spanning_chunks(tmp_path, monkeypatch):
    import ingestion.lines as lines

    monkeypatch.setattr(lines, "CHUNK_BYTES", 1024)
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"z" * 5000 + b"\n" + b'{"ok":1}\n')
    items, end = read(path, limit=2048)
    assert isinstance(items[0], OversizeLine) and items[0].length == 5001
    assert items[1] == (5001, b'{"ok":1}')
    assert end == 5010


def test_empty_file(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"")
    assert read(path) == ([], 0)
