"""Results of seeding: per-table counts, rendered as text or JSON."""

from __future__ import annotations

from pydantic import BaseModel


class TableCounts(BaseModel):
    table: str
    domain: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    erased: int = 0
    """Rows of subjects erased by a DSR (or referencing such rows), left as erasure left them."""


class GenerateResult(BaseModel):
    """What ``govern seed generate-events`` wrote."""

    table: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def text_lines(self) -> list[str]:
        return [
            f"inserted {self.rows} rows into {self.table} in {self.seconds:.2f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        ]


class SeedResult(BaseModel):
    """What ``govern seed`` did: a second run of the same seed reports zero changes."""

    env: str
    domains: list[str]
    files: list[str]
    passwords: str
    tables: list[TableCounts]
    generated: GenerateResult | None = None

    @property
    def changes(self) -> int:
        return sum(t.inserted + t.updated for t in self.tables)

    def text_lines(self) -> list[str]:
        lines = [f"seeded environment {self.env} ({', '.join(self.domains)})"]
        for t in self.tables:
            lines.append(
                f"  {t.table:<22} inserted {t.inserted:>5}  updated {t.updated:>5}  "
                f"unchanged {t.unchanged:>5}" + (f"  left erased {t.erased:>5}" if t.erased else "")
            )
        lines.append(f"{self.changes} change(s); account passwords: {self.passwords}")
        if self.generated is not None:
            lines += self.generated.text_lines()
        return lines
