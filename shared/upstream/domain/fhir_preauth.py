"""A prior authorization from the EHR: a ClaimResponse carrying `preAuthRef` (FHIR R4
`ClaimResponse.preAuthRef` and `preAuthPeriod`; Da Vinci PAS answers a prior-authorization
request this way) → an `Authorization`, so the calendar stays current without a CSV upload.

What the response says is used and nothing is invented: the number and the period are
required (without a period there is no expiry to watch, and the response is reported as an
issue); codes come from the response's added items (`addItem.productOrService`), units from
their quantities when every item gives one.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from upstream.domain.fhir_values import fhir_day as _day
from upstream.domain.fhir_values import reference_id as _reference_id
from upstream.domain.ingest import TenantContext
from upstream.domain.records import Authorization, Source


def _codes(items: list[Any]) -> tuple[str, ...]:
    codes = []
    for item in items:
        concept = item.get("productOrService") if isinstance(item, dict) else None
        for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code.strip():
                codes.append(code.strip().upper())
    return tuple(dict.fromkeys(codes))


def _units(items: list[Any]) -> float | None:
    values: list[float] = []
    for item in items:
        quantity = item.get("quantity") if isinstance(item, dict) else None
        value = quantity.get("value") if isinstance(quantity, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None  # one item without units: the total is unknown, not smaller
        values.append(float(value))
    return sum(values) if values else None


def preauthorization(resource: dict[str, Any], ctx: TenantContext,
                     ) -> Authorization | tuple[str, str] | None:
    """The authorization a ClaimResponse grants; (reason, detail) when it names one that
    cannot be used; None when it is not a prior-authorization answer."""
    number = resource.get("preAuthRef")
    if not isinstance(number, str) or not number.strip():
        return None
    if resource.get("outcome") == "error" or resource.get("status") == "entered-in-error":
        return None  # refused or withdrawn: nothing was authorized
    period = resource.get("preAuthPeriod")
    period = period if isinstance(period, dict) else {}
    start, end = _day(period.get("start")), _day(period.get("end"))
    if start is None or end is None:
        return ("preauth_without_period", "preAuthRef without preAuthPeriod start and end")
    if end < start:
        return ("invalid_authorization", "preAuthPeriod ends before it starts")
    insurer = resource.get("insurer")
    insurer = insurer if isinstance(insurer, dict) else {}
    payer_raw = str(insurer.get("display") or _reference_id(insurer) or "").strip()
    if not payer_raw:
        return ("missing_payer", "no insurer on the prior-authorization response")
    patient = _reference_id(resource.get("patient"))
    items = [i for i in resource.get("addItem") or [] if isinstance(i, dict)]
    try:
        return Authorization(
            customer_id=ctx.customer_id, authorization_number=number.strip(),
            patient_key=ctx.hash_patient(patient) if patient else None,
            payer=ctx.payers.canonical(payer_raw), payer_raw=payer_raw,
            cpt_codes=_codes(items), start_date=start, end_date=end,
            units_authorized=_units(items), source=Source.FHIR, updated_at=ctx.now)
    except ValidationError as exc:
        return ("invalid_authorization", str(exc.errors()[0]["msg"])[:200])
