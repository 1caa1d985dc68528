"""Every claim adjustment reason code (CARC) and the remark codes (RARCs) we meet, explained.

A remittance line says `CO-197 N54`; a billing manager needs "the authorization is missing —
get it and resubmit", the queue it belongs to, and the rule behind it. The catalogue joins
three sources: X12's own texts (CMS's CC0 copy, kept for reference and for codes nobody has
written plain words for), Upstream's plain-English reading of every CARC, and the group code
(who owes the money). Unknown codes say so; the catalogue never guesses a meaning.
"""

from __future__ import annotations

import csv
import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from upstream.domain.codes.categories import CATEGORIES

GROUPS = {"CO": "contractual obligation (not billable to the patient)",
          "PR": "patient responsibility", "OA": "other adjustment",
          "PI": "payer-initiated reduction", "CR": "correction or reversal"}
# X12 numbers remarks in three series: M (Medicare Part B origin), MA (Medicare Part A origin)
# and N (every remark added since the series ran out); all payers use all three.
RARC_FAMILIES = {"M": "remark (M series, first written for Medicare Part B)",
                 "MA": "remark (MA series, first written for Medicare Part A)",
                 "N": "remark (N series, the codes added since)"}
NO_CODE = "none"  # what the aggregates count a denial without a reason code under

_CARC = re.compile(r"^(?:(CO|PR|OA|PI|CR)[\s\-]?)?([ABDPWY]?)0*(\d{1,3})$", re.ASCII)
_RARC = re.compile(r"^(MA|M|N)0*(\d{1,3})$", re.ASCII)


@dataclass(frozen=True)
class CarcText:
    category: str
    meaning: str
    action: str
    basis: str | None
    official: str
    inactive: bool


@dataclass(frozen=True)
class RarcText:
    meaning: str
    action: str
    alert: bool


def _data(name: str) -> str:
    return importlib.resources.files("upstream.domain.codes").joinpath(
        f"data/{name}").read_text(encoding="utf-8")


def _rows(name: str, width: int) -> list[list[str]]:
    rows = [line.split("|") for line in _data(name).splitlines()
            if line.strip() and not line.startswith("#")]
    broken = [row[0] for row in rows if len(row) != width]
    if broken:
        raise ValueError(f"{name}: rows {broken[:3]} do not have {width} fields")
    return rows


@cache
def carc_table() -> dict[str, CarcText]:
    official = {row["code"]: row["description"]
                for row in csv.DictReader(_data("x12_carc_texts.csv").splitlines())}
    table: dict[str, CarcText] = {}
    for code, category, meaning, action, basis in _rows("carc_plain.psv", 5):
        defaults = CATEGORIES[category]
        text = official[code]
        table[code] = CarcText(category, meaning, action or defaults.action,
                               basis or defaults.basis, text.removesuffix(" INACTIVE"),
                               text.endswith("INACTIVE"))
    return table


@cache
def rarc_table() -> dict[str, RarcText]:
    return {code: RarcText(meaning, action, alert == "yes")
            for code, meaning, action, alert in _rows("rarc_plain.psv", 4)}


def explain(code: str, remarks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The whole entry for one code as staff type it: `CO-97`, `co 97`, `97`, `CO-B7`, `N290`.

    `remarks` is a practice's licensed RARC list (`remarks_file.read_remarks`); its texts stand
    in where Upstream has no plain reading of a remark.
    """
    token = " ".join(str(code).split()).upper()[:40]
    if rarc := _RARC.match(token):
        return _explain_rarc(f"{rarc[1]}{rarc[2]}", rarc[1], remarks or {})
    if carc := _CARC.match(token):
        return _explain_carc(f"{carc[2]}{carc[3]}", carc[1])
    if token.lower() == NO_CODE:
        return _unknown(NO_CODE, "none", "No reason code was sent with the denial.",
                        "Call the payer or read the remittance's remark codes.")
    return _unknown(token, "unknown", "Not a claim adjustment reason code or remark code.",
                    "Check the code as printed on the remittance.")


def _explain_carc(number: str, group: str | None) -> dict[str, Any]:
    shown = f"{group}-{number}" if group else number
    entry = carc_table().get(number)
    if entry is None:
        return {**_unknown(shown, "carc", "Reason code not in Upstream's catalogue.",
                           "Look the code up in the X12 CARC list."),
                "group_code": group, "group": GROUPS.get(group or "")}
    category = CATEGORIES[entry.category]
    return {"code": shown, "kind": "carc", "known": True, "number": number,
            "group_code": group, "group": GROUPS.get(group or ""),
            "category": entry.category, "category_label": category.label,
            "meaning": entry.meaning, "action": entry.action, "basis": entry.basis,
            "official": entry.official, "inactive": entry.inactive}


def _explain_rarc(code: str, family: str, remarks: Mapping[str, str]) -> dict[str, Any]:
    entry = rarc_table().get(code)
    licensed = remarks.get(code)
    if entry is None and licensed is None:
        return {**_unknown(code, "rarc", "Remark code not in Upstream's catalogue.",
                           "Look the code up in the X12 RARC list, or load the licensed list "
                           "(UPSTREAM_REMARK_CODES)."), "family": RARC_FAMILIES[family]}
    return {"code": code, "kind": "rarc", "known": True, "family": RARC_FAMILIES[family],
            "meaning": entry.meaning if entry else licensed,
            "action": entry.action if entry else "Act on the remark with the reason code it "
                                                 "accompanies.",
            "alert": entry.alert if entry else (licensed or "").startswith("Alert"),
            "official": licensed}


def _unknown(code: str, kind: str, meaning: str, action: str) -> dict[str, Any]:
    return {"code": code, "kind": kind, "known": False, "meaning": meaning, "action": action}


def describe_carc(code: str) -> dict[str, Any]:
    """The short form alerts carry as evidence: what it means, what to do, and why."""
    entry = explain(code)
    return {"code": entry["code"], "group": entry.get("group"),
            "category": entry.get("category_label"), "meaning": entry["meaning"],
            "action": entry["action"], "basis": entry.get("basis")}
