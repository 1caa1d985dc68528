"""ABA (applied behavior analysis) checks.

- Credential by code: the AMA CPT adaptive-behavior codes (2019 set) split technician work
  (97153, 97154: an RBT under supervision) from qualified-health-care-professional work
  (97151 assessment, 97155 protocol modification, 97156 family guidance, 97157 multiple-
  family guidance, 97158 group protocol modification: a BCBA or BCBA-D). BACB's RBT
  requirements bar technicians from the QHP services. A QHP code rendered by an RBT is
  denied, and billed knowingly it is a false claim.
- Units vs session length: the codes are per 15 minutes; CPT's time rule gives a unit once
  the midpoint (8 minutes) is passed, so N minutes support (N − 8) // 15 + 1 units.
- Credential expiry: a line rendered after the provider's BCBA certification lapsed is not
  payable (BACB certification cycle); the tenant's provider list carries the dates.
(HN/HO/HP level modifiers are payer rules: `domain/risk/data/modifier_rules.csv`.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from upstream.domain.detect.findings import Finding, Severity
from upstream.domain.specialty.common import finding, line_ref, number
from upstream.domain.values import as_day as day

QHP_CODES = frozenset({"97151", "97155", "97156", "97157", "97158"})
TIMED_ABA = frozenset({"97151", "97152", "97153", "97154", "97155", "97156", "97157",
                       "97158"})
TECHNICIAN_CREDENTIALS = frozenset({"RBT", "BT", "TECH"})
MIDPOINT_MINUTES, UNIT_MINUTES = 8, 15
EXPIRY_WARNING_DAYS = 30  # one month to renew before sessions stop being payable


def units_supported(minutes: float) -> int:
    return 0 if minutes < MIDPOINT_MINUTES else int((minutes - MIDPOINT_MINUTES)
                                                    // UNIT_MINUTES) + 1


def _by_payer(lines: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        grouped[str(line.get("payer") or "")].append(line)
    return grouped


def _days(lines: Sequence[Mapping[str, Any]], fallback: date) -> tuple[date, date]:
    days = [d for d in (day(line.get("service_date")) for line in lines) if d] or [fallback]
    return min(days), max(days)


def credential_mismatch(lines: Sequence[Mapping[str, Any]], run_day: date) -> list[Finding]:
    wrong = [line for line in lines if str(line.get("cpt")) in QHP_CODES
             and str(line.get("provider_credential") or "").upper() in TECHNICIAN_CREDENTIALS]
    found = []
    for payer, rows in _by_payer(wrong).items():
        first, last = _days(rows, run_day)
        found.append(finding(
            "aba_credential_mismatch", payer or None, "aba:credential", Severity.HIGH,
            f"{len(rows)} ABA lines for {payer}: supervisor codes rendered by a technician",
            "97151/97155/97156/97157/97158 are BCBA-level services; these lines name an RBT "
            "as rendering provider.", "aba_rules", first, last,
            {"lines": len(rows), "billed_dollars": sum(number(r.get("billed_cents"))
                                                       for r in rows) / 100},
            {"lines": [line_ref(r) for r in rows[:25]]},
            ["Correct the rendering provider to the supervising BCBA, or the code to 97153.",
             "Check the scheduling template that produced them."]))
    return found


def units_over_time(lines: Sequence[Mapping[str, Any]], run_day: date) -> list[Finding]:
    over = [line for line in lines if str(line.get("cpt")) in TIMED_ABA
            and line.get("minutes") not in (None, "")
            and number(line.get("units")) > units_supported(number(line.get("minutes")))]
    found = []
    for payer, rows in _by_payer(over).items():
        first, last = _days(rows, run_day)
        extra = sum(number(r.get("units")) - units_supported(number(r.get("minutes")))
                    for r in rows)
        found.append(finding(
            "aba_units_exceed_time", payer or None, "aba:units", Severity.MEDIUM,
            f"{len(rows)} ABA lines for {payer} bill more units than the session time",
            f"{extra:g} units beyond what the documented minutes support (a unit needs 8 "
            "minutes past the last full 15).", "aba_rules", first, last,
            {"lines": len(rows), "excess_units": extra},
            {"lines": [line_ref(r) for r in rows[:25]]},
            ["Bill the units the session notes support; correct the template's default units."]
        ))
    return found


def credential_expiry(lines: Sequence[Mapping[str, Any]],
                      providers: Mapping[str, Mapping[str, Any]],
                      run_day: date) -> list[Finding]:
    found = []
    for npi, provider in sorted(providers.items()):
        expires = day(provider.get("expires"))
        if expires is None:
            continue
        after = [line for line in lines if str(line.get("provider_npi")) == npi
                 and (day(line.get("service_date")) or run_day) > expires]
        if after:
            first, last = _days(after, run_day)
            found.append(finding(
                "aba_credential_expired", None, f"provider:{npi}", Severity.HIGH,
                f"{len(after)} lines rendered after provider {npi}'s "
                f"{provider.get('credential', 'credential')} expired on {expires}",
                "Sessions after a certification lapses are not payable.", "aba_rules",
                first, last, {"lines": len(after)},
                {"lines": [line_ref(r) for r in after[:25]], "expired_on": expires.isoformat()},
                ["Hold these claims; renew the certification or re-assign the sessions."]))
        elif run_day <= expires <= run_day + timedelta(days=EXPIRY_WARNING_DAYS):
            found.append(finding(
                "aba_credential_expiring", None, f"provider:{npi}", Severity.MEDIUM,
                f"Provider {npi}'s {provider.get('credential', 'credential')} expires "
                f"{expires}", "Renew before then or the provider's sessions stop being payable.",
                "aba_rules", run_day, expires, {"days_left": (expires - run_day).days}, {},
                ["Confirm the renewal is filed with the BACB."]))
    return found
