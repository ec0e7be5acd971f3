"""docs/bad-inputs.md stays in step with the tests: its config table is BAD_CONFIGS row for row, its headings count
their rows, and every test it names (`path::test_name[param]`) exists. Pure text reading."""

import re
from pathlib import Path

from bad_configs import BAD_CONFIGS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"
TEST_REF = re.compile(r"`(tests/[^`:\s]+\.py)::([A-Za-z_][A-Za-z0-9_]*)(\[[^`]*\])?`")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def config_row(name: str, text: str, message: str) -> str:
    """The table row of one BAD_CONFIGS entry, as the doc writes it (newlines shown as ⏎)."""
    yaml = _escape(text.rstrip("\n")).replace("\n", " ⏎ ")
    return f"| {_escape(name)} | `{yaml}` | `{_escape(message)}` |"


def _section(heading_start: str) -> tuple[str, list[str]]:
    """A `## ` section's heading and the data rows of its table (header and separator left out)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading_start))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    table = [line for line in lines[start + 1:end] if line.startswith("|")]
    return lines[start], table[2:]


def _first_cell(row: str) -> str:
    return re.split(r"(?<!\\)\|", row)[1].strip().replace("\\|", "|")


def _heading_count(heading: str) -> int:
    match = re.search(r"\((\d+) classes\)$", heading)
    assert match, f"heading without a '(N classes)' count: {heading!r}"
    return int(match.group(1))


def test_config_table_is_bad_configs_row_for_row():
    heading, rows = _section("## Configs")
    assert _heading_count(heading) == len(BAD_CONFIGS), heading
    by_class = {_first_cell(row): row for row in rows}
    for name, text, message in BAD_CONFIGS:
        assert name in by_class, f"class {name!r} of tests/bad_configs.py has no row in {DOC}"
        expected = config_row(name, text, message)
        assert by_class[name] == expected, f"stale row for {name!r}; expected:\n{expected}"
    extra = set(by_class) - {c[0] for c in BAD_CONFIGS}
    assert not extra, f"rows for classes not in BAD_CONFIGS: {sorted(extra)}"
    assert len(rows) == len(BAD_CONFIGS)


def test_corrupted_files_table_counts_its_rows_and_each_names_a_test():
    heading, rows = _section("## Corrupted or inconsistent files")
    assert _heading_count(heading) == len(rows), heading
    assert len(rows) >= 30
    for row in rows:
        assert TEST_REF.search(row.rsplit("|", 2)[-2]), f"row names no test in its last column: {row}"


def test_every_test_the_doc_names_exists():
    text = DOC.read_text(encoding="utf-8")
    refs = {(m.group(1), m.group(2)) for m in TEST_REF.finditer(text)}
    assert refs
    _, corrupted = _section("## Corrupted or inconsistent files")
    _, killed = _section("## Killed jobs and reruns")
    assert killed and all(TEST_REF.search(row) for row in corrupted + killed)
    sources = {}
    for path, name in sorted(refs):
        file = ROOT / path
        assert file.is_file(), f"{path} (named in {DOC.name}) does not exist"
        source = sources.setdefault(path, file.read_text(encoding="utf-8"))
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path} has no `def {name}`"
