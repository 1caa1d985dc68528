"""Plain-English meaning and the corrective action for the common CARC codes.

Written for revenue-cycle staff, in our own words; the authoritative texts are X12's. A code
arrives with its group prefix (`CO-197`): CO = contractual obligation (the practice cannot
bill the patient), PR = patient responsibility, OA = other adjustment, PI = payer-initiated.
"""

from __future__ import annotations

import csv
import importlib.resources
from functools import cache
from typing import Any

GROUPS = {"CO": "contractual obligation (not billable to the patient)",
          "PR": "patient responsibility", "OA": "other adjustment",
          "PI": "payer-initiated reduction", "CR": "correction or reversal"}


@cache
def _catalogue() -> dict[str, tuple[str, str]]:
    text = importlib.resources.files("upstream.domain.detect").joinpath(
        "data/carc_catalogue.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {row["code"]: (row["meaning"], row["action"]) for row in rows}


def describe_carc(code: str) -> dict[str, Any]:
    """`CO-197` → code, group, meaning, action (unknown codes say so rather than guess)."""
    group, _, number = code.rpartition("-")
    meaning, action = _catalogue().get(number or code, (
        "Reason code not in Upstream's catalogue.", "Look the code up in the X12 CARC list."))
    return {"code": code, "group": GROUPS.get(group, group or None), "meaning": meaning,
            "action": action}
