"""athenaOne's referral and pre-certification authorizations (`GET /v1/{practiceid}/patients/
{patientid}/referralauths`, athenahealth's "Insurance and Financial — Referral Authorization"
API) → `Authorization`s, so the calendar follows what the front desk records in athenaOne
instead of waiting for the next CSV upload.

athenaOne attaches an authorization to one of the patient's insurance policies and counts it
in visits (`visitsapproved`, `visitsleft`, `referralauthunits`); dates are `MM/DD/YYYY`.
What the record says is used and nothing is invented: without a number (`noreferralrequired`)
there is nothing to track, without an expiration date nothing to warn about, and each such
record is a `MappingIssue` with its reason. Notes and the member id stay out: free text is
where PHI hides, and the calendar needs neither.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from upstream.domain import values as v
from upstream.domain.fhir_map import MappingIssue
from upstream.domain.ingest import TenantContext
from upstream.domain.records import Authorization, Source

RESOURCE = "athena:referralauth"
# A referral counted in visits: the calendar's units are athenaOne's visits.
VISIT_UNITS = frozenset({"VISIT", "VISITS", ""})
# The number goes on the claim (837 REF*G1, whose REF02 holds at most 50 characters).
MAX_NUMBER_CHARS = 50


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _payer(record: dict[str, Any], insurances: list[Any]) -> str | None:
    """The policy the authorization is attached to, else the package name athenaOne shows."""
    wanted = v.clean(_text(record.get("insuranceid")))
    policy = next((i for i in insurances if isinstance(i, dict) and wanted
                   and str(i.get("insuranceid")) == wanted), None)
    if policy is not None:
        name = v.clean(_text(policy.get("ircname") or policy.get("insuranceplanname")))
        if name:
            return name
    return v.clean(_text(record.get("insurancepackagename")))


def _codes(value: Any) -> tuple[str, ...]:
    """`["97153", "15000,AS", "0147T"]` (code, then modifiers after a comma) or one string."""
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    codes: list[str] = []
    for item in items:
        head = str(item).split(",", 1)[0] if isinstance(item, str | int) else ""
        try:
            parsed = v.parse_procedure(head)
        except v.InvalidValue:
            continue
        if parsed:
            codes.append(parsed[0])
    return tuple(dict.fromkeys(codes))


def _visits(record: dict[str, Any]) -> tuple[float | None, float | None]:
    """(units authorized, units used) in visits; used only when both counts are given."""
    unit = str(record.get("referralauthunits") or "").strip().upper()
    if unit not in VISIT_UNITS:
        return None, None  # counted in something else (days, units of time): not comparable
    approved = v.parse_int(_text(record.get("visitsapproved")), "invalid_units")
    left = v.parse_int(_text(record.get("visitsleft")), "invalid_units")
    if approved is None:
        return None, None
    if left is not None and left > approved:
        raise v.InvalidValue("invalid_units", f"{left} visits left of {approved} approved")
    return float(approved), (float(approved - left) if left is not None else None)


def map_referral_auth(record: Any, insurances: list[Any], patient_id: str | None,
                      ctx: TenantContext, updated_at: datetime,
                      ) -> Authorization | MappingIssue | None:
    """One athenaOne authorization → an `Authorization`; a `MappingIssue` when it names one
    that cannot be tracked; None when it carries no number on purpose (no referral needed).
    Never raises for input."""
    if not isinstance(record, dict):
        return MappingIssue(RESOURCE, None, "not_an_authorization", "not a JSON object")
    record_id = v.clean(_text(record.get("referralauthid")))
    if str(record.get("noreferralrequired")).lower() == "true":
        return None
    try:
        number = v.parse_identifier(_text(record.get("referralauthnumber")))
        if number is None:
            return MappingIssue(RESOURCE, record_id, "missing_authorization_number",
                                "no referralauthnumber")
        if len(number) > MAX_NUMBER_CHARS:
            return MappingIssue(RESOURCE, record_id, "invalid_authorization",
                                f"referralauthnumber longer than {MAX_NUMBER_CHARS} characters")
        start = v.parse_date(_text(record.get("startdate")))
        end = v.parse_date(_text(record.get("expirationdate")))
        if start is None or end is None:
            return MappingIssue(RESOURCE, record_id, "authorization_without_period",
                                "no startdate or expirationdate: nothing to watch")
        if end < start:
            return MappingIssue(RESOURCE, record_id, "invalid_authorization",
                                "expirationdate before startdate")
        payer_raw = _payer(record, insurances)
        if payer_raw is None:
            return MappingIssue(RESOURCE, record_id, "unknown_payer",
                                "the authorization's insurance is not among the patient's")
        authorized, used = _visits(record)
        return Authorization(
            customer_id=ctx.customer_id, authorization_number=number,
            patient_key=ctx.hash_patient(patient_id) if patient_id else None,
            payer=ctx.payers.canonical(payer_raw), payer_raw=payer_raw,
            cpt_codes=_codes(record.get("procedurecodes")), start_date=start, end_date=end,
            # Contract 1 knows csv|fhir|835: the EHR path (webhook, then API) is `fhir`.
            units_authorized=authorized, units_used=used, source=Source.FHIR,
            updated_at=updated_at)
    except v.InvalidValue as exc:
        return MappingIssue(RESOURCE, record_id, exc.reason, str(exc))
    except ValidationError as exc:
        return MappingIssue(RESOURCE, record_id, "invalid_authorization",
                            str(exc.errors()[0]["msg"]))


def map_referral_auths(records: Any, insurances: Any, patient_id: str | None,
                       ctx: TenantContext, updated_at: datetime,
                       ) -> tuple[list[Authorization], list[MappingIssue]]:
    """Every record of the list, each on its own: one bad record costs only itself."""
    policies = insurances if isinstance(insurances, list) else []
    found: list[Authorization] = []
    issues: list[MappingIssue] = []
    for record in records if isinstance(records, list) else []:
        mapped = map_referral_auth(record, policies, patient_id, ctx, updated_at)
        if isinstance(mapped, Authorization):
            found.append(mapped)
        elif mapped is not None:
            issues.append(mapped)
    return found, issues
