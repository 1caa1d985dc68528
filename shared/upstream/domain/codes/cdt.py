"""Dental procedure codes (CDT, D0100–D9999) and the families dentists and payers reason in.

A dental practice bills dozens of distinct D-codes, most of them a few times a month: a
denial spike on one code is rarely enough to test, while the same payer starting to deny
"periodontics" or "crowns" across codes is the pattern payers' policy changes make. So each
CDT line also counts towards its family, and the detectors test family cells beside code
cells. Families follow the ADA's CDT category ranges (a fact of the code set's structure).
"""

from __future__ import annotations

import re

CDT_CODE = re.compile(r"^D\d{4}$", re.ASCII)

# (first code, last code, family key, label): ranges of the CDT categories of service.
FAMILIES: tuple[tuple[int, int, str, str], ...] = (
    (100, 999, "cdt_diagnostic", "Diagnostic"),
    (1000, 1999, "cdt_preventive", "Preventive"),
    (2000, 2999, "cdt_restorative", "Restorative"),
    (3000, 3999, "cdt_endodontics", "Endodontics"),
    (4000, 4999, "cdt_periodontics", "Periodontics"),
    (5000, 5899, "cdt_prosth_removable", "Prosthodontics, removable"),
    (5900, 5999, "cdt_maxillofacial", "Maxillofacial prosthetics"),
    (6000, 6199, "cdt_implants", "Implant services"),
    (6200, 6999, "cdt_prosth_fixed", "Prosthodontics, fixed"),
    (7000, 7999, "cdt_oral_surgery", "Oral and maxillofacial surgery"),
    (8000, 8999, "cdt_orthodontics", "Orthodontics"),
    (9000, 9999, "cdt_adjunctive", "Adjunctive general services"),
)
LABELS = {key: label for _, _, key, label in FAMILIES}


def is_cdt(code: str | None) -> bool:
    return bool(code) and bool(CDT_CODE.match(str(code)))


def family(code: str | None) -> str | None:
    """The CDT family key of a D-code (`D2740` → `cdt_restorative`); None for anything else,
    including D0000–D0099, which the CDT leaves unassigned."""
    if not is_cdt(code):
        return None
    number = int(str(code)[1:])
    for first, last, key, _ in FAMILIES:
        if first <= number <= last:
            return key
    return None
