"""A practice's stored risk model, whichever kind the weekly refit adopted."""

from __future__ import annotations

from typing import Any, Protocol

from upstream.domain.risk import boosted, calibrate
from upstream.domain.risk.score import LineScore


class RiskModel(Protocol):
    def rescore(self, line: LineScore, claim_line: Any) -> LineScore: ...


def model_from_document(document: object) -> RiskModel | None:
    """The logistic or the boosted model; None when absent, foreign or corrupt (the rules
    stand)."""
    if not isinstance(document, dict):
        return None
    if document.get("kind") == boosted.KIND:
        return boosted.from_document(document)
    return calibrate.from_document(document)


def to_document(model: calibrate.Calibrated | boosted.Boosted) -> dict[str, object]:
    if isinstance(model, boosted.Boosted):
        return boosted.to_document(model)
    return calibrate.to_document(model)
