"""What the specialty checks share: reading a stored line's fields, and their findings'
shape (Contract 4 via `Finding`, so they merge, publish and deliver like every detector's)."""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Mapping
from datetime import date
from typing import Any

from upstream.domain.detect.findings import Finding, Severity, Window


def number(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def modifiers(line: Mapping[str, Any]) -> set[str]:
    return {str(m).upper() for m in line.get("modifiers") or []}


def table(name: str) -> list[dict[str, str]]:
    text = importlib.resources.files("upstream.domain.specialty").joinpath(
        f"data/{name}").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def finding(kind: str, payer: str | None, scope: str, severity: Severity, title: str,
            summary: str, method: str, first: date, last: date, metrics: dict[str, Any],
            evidence: dict[str, Any], actions: list[str]) -> Finding:
    return Finding(type=kind, payer=payer, scope=scope, severity=severity, title=title,
                   summary=summary, method=method, metrics=metrics, evidence=evidence,
                   recommended_actions=actions,
                   window=Window(current_start=first, current_end=last))


def line_ref(line: Mapping[str, Any]) -> dict[str, Any]:
    """A claim line as evidence: ids and codes, the patient key only (never a name)."""
    return {k: line.get(k) for k in ("claim_id", "line", "patient_key", "cpt", "modifiers",
                                     "units", "minutes", "service_date", "provider_npi")}
