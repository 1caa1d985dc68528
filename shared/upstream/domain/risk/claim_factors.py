"""Risk factors that need the whole claim, from the specialty checks' rules: an ABA
supervisor code rendered by a technician (15 points, like a wrong-level modifier: the line is
coded against its documentation), and timed units beyond what the minutes support — per line
for ABA, per patient-day for PT/OT's 8-minute rule (10 points: the excess units are cut, the
line usually is not denied whole)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from upstream.domain.risk.score import Factor
from upstream.domain.specialty import aba, pt
from upstream.domain.specialty.common import number

CREDENTIAL_POINTS, UNITS_POINTS = 15, 10


def claim_factors(lines: Sequence[Mapping[str, Any]]) -> list[list[Factor]]:
    """One list of extra factors per line, in order."""
    extra: list[list[Factor]] = [[] for _ in lines]
    days: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, line in enumerate(lines):
        cpt = str(line.get("cpt") or "")
        credential = str(line.get("provider_credential") or "").upper()
        if cpt in aba.QHP_CODES and credential in aba.TECHNICIAN_CREDENTIALS:
            extra[index].append(Factor("credential_code_mismatch", CREDENTIAL_POINTS, {
                "cpt": cpt, "credential": credential, "source": "AMA CPT adaptive behavior "
                "codes; BACB RBT requirements"}))
        minutes = line.get("minutes")
        if minutes in (None, ""):
            continue
        if cpt in aba.TIMED_ABA and number(line.get("units")) > aba.units_supported(
                number(minutes)):
            extra[index].append(Factor("units_exceed_minutes", UNITS_POINTS, {
                "units": number(line.get("units")), "minutes": number(minutes),
                "supported": aba.units_supported(number(minutes))}))
        if cpt in pt.TIMED_CODES:
            days[(str(line.get("patient_key") or ""), str(line.get("service_date")))].append(
                index)
    for indexes in days.values():
        minutes_total = sum(number(lines[i].get("minutes")) for i in indexes)
        units_total = sum(number(lines[i].get("units")) for i in indexes)
        if units_total > aba.units_supported(minutes_total):
            for i in indexes:
                extra[i].append(Factor("units_exceed_minutes", UNITS_POINTS, {
                    "day_units": units_total, "day_minutes": minutes_total,
                    "supported": aba.units_supported(minutes_total),
                    "source": "CMS Medicare Claims Processing Manual ch. 5 §20.2"}))
    return extra
