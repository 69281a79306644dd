"""Plain-text tables for reports (Markdown)."""
from typing import List


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    """A GitHub Markdown table: ``| a | b |``, then ``|---|---|``, then one line per row, with
    ``|`` in row cells escaped as ``\\|``. No trailing newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines)
