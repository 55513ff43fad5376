"""--repeat / --every: running statistics per agent and check type across runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from .render import figure_ms, format_ms, label, outcome


@dataclass
class Series:
    agent: str
    location: str
    check_type: str
    runs: int = 0
    ok: int = 0
    values: list[float] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        self.runs += 1
        if outcome(row) == "ok":
            self.ok += 1
        value = figure_ms(row)
        if value is not None:
            self.values.append(value)


class RunningStats:
    def __init__(self):
        self.series: dict[tuple[str, str], Series] = {}
        self.checks = 0

    def add(self, check: dict[str, Any]) -> None:
        self.checks += 1
        for row in check.get("results") or []:
            agent = row.get("agent") or {}
            key = (agent.get("id", ""), row.get("check_type", ""))
            if key not in self.series:
                self.series[key] = Series(agent.get("name", "?"), agent.get("location", ""), key[1])
            self.series[key].add(row)

    def agent_ids(self) -> set[str]:
        return {agent_id for agent_id, _ in self.series}

    def failed(self) -> bool:
        return any(s.ok < s.runs for s in self.series.values())

    def table(self, title: str) -> Table:
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for name, justify in (
            ("Agent", "left"),
            ("Location", "left"),
            ("Check", "left"),
            ("OK", "right"),
            ("Last", "right"),
            ("Min", "right"),
            ("Avg", "right"),
            ("Max", "right"),
        ):
            table.add_column(name, justify=justify, no_wrap=True)
        for s in sorted(self.series.values(), key=lambda s: (s.check_type, s.location, s.agent)):
            values = s.values
            avg = sum(values) / len(values) if values else None
            table.add_row(
                s.agent,
                s.location,
                label(s.check_type),
                f"{s.ok}/{s.runs}",
                format_ms(values[-1]) if values else "—",
                format_ms(min(values) if values else None),
                format_ms(avg),
                format_ms(max(values) if values else None),
            )
        return table
