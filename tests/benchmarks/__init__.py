"""Benchmarks against a loaded PostgreSQL database: ``python -m tests.benchmarks [name ...]``.

A benchmark is a module here (``bench_<name>.py`` or ``<name>.py``) with ``run() -> dict`` of flat
figures and ``LIMITS``, a dict from figure name to a ``Limit``. Figures without a limit are
reported for information. This package imports nothing from Django: the runner sets up the
database and Django before it imports any benchmark module.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    """A bound one figure is held to, e.g. ``at_most(150)``."""

    symbol: str
    value: Any
    check: Callable[[Any, Any], bool]

    def passes(self, figure: Any) -> bool:
        return figure is not None and self.check(figure, self.value)

    def __str__(self) -> str:
        return f"{self.symbol} {self.value}"


def at_most(value: float) -> Limit:
    return Limit("<=", value, operator.le)


def at_least(value: float) -> Limit:
    return Limit(">=", value, operator.ge)


def equals(value: Any) -> Limit:
    return Limit("==", value, operator.eq)


def p95(samples: list[float]) -> float:
    """The nearest-rank 95th percentile: with 20 samples, the second slowest."""
    ordered = sorted(samples)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 * n) without floats
    return ordered[max(rank, 1) - 1]
