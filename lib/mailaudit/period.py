"""The reporting period: sends whose DATE_SENT falls in [start, end], both dates inclusive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from mailaudit.narrative import language


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"period start {self.start} is after its end {self.end}")

    @property
    def start_dt(self) -> datetime:
        """First instant of the period (naive, like Bitrix's DATETIME columns)."""
        return datetime.combine(self.start, time.min)

    @property
    def end_exclusive(self) -> datetime:
        """Midnight after the last day: filter with ``DATE_SENT < end_exclusive``."""
        return datetime.combine(self.end + timedelta(days=1), time.min)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period of the same length just before this one."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    @property
    def label(self) -> str:
        """The period as a reader sees it, in the active language: 2026-01-01 – 2026-06-30."""
        return f"{language.date(self.start)} – {language.date(self.end)}"

    @property
    def no_sends(self) -> str:
        """The sentence every command and report uses for a period without e-mail sends."""
        return language._("no e-mail sends between {start} and {end}").format(
            start=language.date(self.start), end=language.date(self.end))
