"""One table helper for every report section: the same rows as HTML and as Markdown."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


@dataclass(frozen=True)
class Table:
    """A header and rows; ``numeric`` columns align right and ``marked`` rows shade in HTML."""

    header: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    numeric: Sequence[int] = ()
    marked: Sequence[int] = ()

    @classmethod
    def of(
        cls,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        numeric: Sequence[int] = (),
        marked: Sequence[int] = (),
    ) -> Table:
        """A table from any iterable of rows (read once)."""
        return cls(list(header), [list(row) for row in rows], tuple(numeric), tuple(marked))

    def html(self) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in self.header)
        body = []
        for i, row in enumerate(self.rows):
            cells = "".join(
                f'<td class="num">{escape(v)}</td>'
                if j in self.numeric
                else f"<td>{escape(v)}</td>"
                for j, v in enumerate(row)
            )
            body.append(
                f'<tr class="mark">{cells}</tr>' if i in self.marked else f"<tr>{cells}</tr>"
            )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def markdown(self) -> str:
        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(cell(h) for h in self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows)
        return "\n".join(lines)


@dataclass(frozen=True)
class Section:
    """A titled part of the report, rendered both ways."""

    title: str
    html: str
    markdown: str
