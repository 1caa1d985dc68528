"""athenahealth's claim JSON (athenaOne API, `GET /v1/{practiceid}/claims/{claimid}`) → claim
lines, in the same mapping layer as FHIR and with the same parsers as CSV.

athenaOne answers in its own flat JSON, not FHIR: lower-case keys, amounts and dates as strings
(`"150.00"`, `"01/05/2026"`), procedures without line numbers, and the payer only as the
patient's insurance id (`primaryinsurancepayer.primarypatientinsuranceid`), resolved through
the patient's insurances (`GET /v1/{practiceid}/patients/{patientid}/insurances`).

The claim endpoint tells what was billed, not what was paid: lines are PENDING until an 835
or an EOB decides them. Lines get the same natural key as a CSV export without line numbers
(`code|modifiers|date|occurrence`), so the practice's own export of the same claim lands on
the same lines instead of doubling them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from upstream.domain import values as v
from upstream.domain.fhir_map import MappingIssue, MappingResult
from upstream.domain.ingest import TenantContext
from upstream.domain.records import ClaimLine, Outcome, Source

RESOURCE = "athena:claim"
# athenahealth FHIR ids name the practice and the athenaOne object: `a-195900.claim-12345`.
_ATHENA_ID = re.compile(r"a-(?P<practice>\d+)\.(?P<kind>[A-Za-z]+)-(?P<id>[A-Za-z0-9]+)$")
_REFERENCE = re.compile(r"(?:^|/)Claim/(?P<id>[A-Za-z0-9.\-]+)$")


@dataclass(frozen=True, slots=True)
class ClaimRef:
    practice_id: str
    claim_id: str
    deleted: bool


def claim_ref(focus: str | None, topic: str | None, practice_id: str | None) -> ClaimRef | None:
    """Which athenaOne claim an id-only event is about; None when it names no claim."""
    if not focus:
        return None
    deleted = bool(topic and topic.rstrip("/").lower().endswith(".delete"))
    tail = focus.rsplit(":", 1)[-1]
    if m := _ATHENA_ID.search(tail):
        if m["kind"].lower() != "claim":
            return None
        return ClaimRef(m["practice"], m["id"], deleted)
    if (m := _REFERENCE.search(focus)) and practice_id:
        claim = m["id"]
        if inner := _ATHENA_ID.search(claim):
            return ClaimRef(inner["practice"], inner["id"], deleted)
        return ClaimRef(str(practice_id), claim, deleted)
    return None


def _payer(claim: dict[str, Any], insurances: list[Any]) -> str | None:
    payer = claim.get("primaryinsurancepayer")
    wanted = str(payer.get("primarypatientinsuranceid") or "") if isinstance(payer, dict) else ""
    candidates = [i for i in insurances if isinstance(i, dict)]
    chosen = next((i for i in candidates if wanted and str(i.get("insuranceid")) == wanted), None)
    if chosen is None and not wanted:  # no id on the claim: the primary (sequence 1) policy
        chosen = next((i for i in candidates if str(i.get("sequencenumber")) == "1"), None)
    if chosen is None:
        return None
    return v.clean(str(chosen.get("ircname") or chosen.get("insuranceplanname") or "")) or None


def _diagnoses(claim: dict[str, Any]) -> tuple[str, ...]:
    found = []
    for item in claim.get("diagnoses") or []:
        if not isinstance(item, dict) or str(item.get("deleteddiagnosis", "")).lower() == "true":
            continue
        if code := v.clean(str(item.get("diagnosisrawcode") or "")):
            found.append(code.upper())
    return tuple(dict.fromkeys(found))


def map_athena_claim(claim: Any, insurances: Any, ctx: TenantContext,
                     updated_at: datetime) -> MappingResult:
    """Never raises for input: an unusable claim or procedure is a `MappingIssue`."""
    result = MappingResult()
    if not isinstance(claim, dict):
        result.issues.append(MappingIssue(RESOURCE, None, "not_a_claim", "not a JSON object"))
        return result
    claim_id = v.clean(str(claim.get("claimid") or ""))
    if claim_id is None:
        result.issues.append(MappingIssue(RESOURCE, None, "missing_claim_id", "no claimid"))
        return result
    procedures = claim.get("procedures")
    if not isinstance(procedures, list) or not procedures:
        result.issues.append(MappingIssue(RESOURCE, claim_id, "no_procedures",
                                          "the claim lists no procedures"))
        return result
    payer_raw = _payer(claim, insurances if isinstance(insurances, list) else [])
    if payer_raw is None:
        result.issues.append(MappingIssue(RESOURCE, claim_id, "unknown_payer",
                                          "the claim's insurance is not among the patient's"))
        return result
    try:
        service = v.parse_date(_text(claim.get("billedservicedate")))
        submitted = v.parse_date(_text(claim.get("claimcreateddate")))
    except v.InvalidValue as exc:
        result.issues.append(MappingIssue(RESOURCE, claim_id, exc.reason, str(exc)))
        return result
    patient = v.clean(_text(claim.get("patientid")))
    diagnoses = _diagnoses(claim)
    occurrences: Counter[str] = Counter()
    for index, procedure in enumerate(procedures, start=1):
        try:
            line = _line(procedure, index, claim_id, payer_raw, service, submitted, patient,
                         diagnoses, occurrences, ctx, updated_at)
        except (v.InvalidValue, ValidationError) as exc:
            reason = exc.reason if isinstance(exc, v.InvalidValue) else "invalid_line"
            result.issues.append(MappingIssue(RESOURCE, claim_id, reason,
                                              f"procedure {index}: {str(exc)[:200]}"))
            continue
        result.lines.append(line)
    return result


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _line(procedure: Any, index: int, claim_id: str, payer_raw: str, service: Any,
          submitted: Any, patient: str | None, diagnoses: tuple[str, ...],
          occurrences: Counter[str], ctx: TenantContext, updated_at: datetime) -> ClaimLine:
    if not isinstance(procedure, dict):
        raise v.InvalidValue("invalid_procedure", "not a JSON object")
    parsed = v.parse_procedure(_text(procedure.get("procedurecode")))
    if parsed is None:
        raise v.InvalidValue("missing_cpt", "no procedurecode")
    code, modifiers = parsed
    natural = f"{code}|{'+'.join(modifiers)}|{service or submitted}"
    occurrences[natural] += 1
    return ClaimLine(
        customer_id=ctx.customer_id, claim_id=claim_id, line=index,
        line_key=f"{natural}|{occurrences[natural]}",
        patient_key=ctx.hash_patient(patient) if patient else None,
        payer=ctx.payers.canonical(payer_raw), payer_raw=payer_raw,
        cpt=code, modifiers=modifiers, diagnosis_codes=diagnoses,
        service_date=service, submitted_date=submitted,
        billed_cents=v.parse_money(_text(procedure.get("chargeamount"))),
        allowed_cents=v.parse_money(_text(procedure.get("allowableamount"))),
        # Contract 1 knows csv|fhir|835: the EHR path (webhook, then API) is `fhir`.
        outcome=Outcome.PENDING, source=Source.FHIR, updated_at=updated_at)
