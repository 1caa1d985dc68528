"""The pre-submission check: a claim as JSON (ours, strict) or a FHIR Claim in, its score,
factors and fixes out. Shared by `POST /v1/risk/score` and `upstream score`.

Bad input is refused with the field that is wrong (pydantic, `extra="forbid"`): codes that
are not CPT/HCPCS or ICD-10 in shape, negative or absurd money, more than `MAX_LINES` lines.
A well-formed code we have never seen is scored: no history and no rule is an answer
("history says nothing"), not an error.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from upstream.domain.fhir_map import map_resource
from upstream.domain.ingest import TenantContext
from upstream.domain.patient import PatientHasher
from upstream.domain.payers import PayerNormalizer
from upstream.domain.risk.claim_factors import claim_factors
from upstream.domain.risk.models import RiskModel
from upstream.domain.risk.rules import RulesTable
from upstream.domain.risk.score import DenialHistory, LineScore, claim_verdict, score_line

# A professional claim (CMS-1500 / 837P) holds up to 50 service lines; twice that covers
# institutional summaries without letting one request score thousands.
MAX_LINES = 100
# No single outpatient service line bills $100,000; a value beyond is a units or cents error.
MAX_LINE_DOLLARS = Decimal("100000")


class CheckError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineIn(_Strict):
    line: int | None = Field(None, ge=1, le=999)
    cpt: str = Field(pattern=r"^[0-9A-Z]{5}$")
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: float | None = Field(None, ge=0, le=1000)
    minutes: int | None = Field(None, ge=0, le=1440)
    diagnosis_codes: list[str] = Field(default_factory=list, max_length=12)
    service_date: date | None = None
    billed_dollars: Decimal | None = Field(None, ge=0, le=MAX_LINE_DOLLARS, decimal_places=2)
    authorization_number: str | None = Field(None, min_length=1, max_length=50)
    provider_credential: str | None = Field(None, pattern=r"^[A-Za-z-]{2,12}$")


class ClaimIn(_Strict):
    claim_id: str = Field("draft", min_length=1, max_length=64)
    payer: str = Field(min_length=1, max_length=100)
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)


_MODIFIER = r"^[0-9A-Z]{2}$"
_ICD10 = r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"


def _valid_codes(claim: ClaimIn) -> None:
    for index, line in enumerate(claim.lines, start=1):
        for modifier in line.modifiers:
            if not re.match(_MODIFIER, modifier.upper()):
                raise CheckError(f"lines.{index}.modifiers: {modifier[:10]!r} is not a modifier")
        for code in line.diagnosis_codes:
            if not re.match(_ICD10, code.upper()):
                raise CheckError(f"lines.{index}.diagnosis_codes: {code[:12]!r} is not ICD-10")


def parse_claim(body: Mapping[str, Any], payers: PayerNormalizer) -> list[dict[str, Any]]:
    """Claim lines (the stored-line shape `score_line` reads) from our JSON or a FHIR Claim."""
    if body.get("resourceType") == "Claim":
        return _from_fhir(body, payers)
    if "resourceType" in body:
        raise CheckError(f"resourceType {str(body['resourceType'])[:30]!r}: send a Claim")
    try:
        claim = ClaimIn.model_validate(dict(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CheckError(f"{where}: {first['msg']}") from None
    _valid_codes(claim)
    payer = payers.canonical(claim.payer) or claim.payer
    return [{"claim_id": claim.claim_id, "line": line.line or index, "payer": payer,
             "cpt": line.cpt, "modifiers": [m.upper() for m in line.modifiers],
             "units": line.units, "minutes": line.minutes,
             "diagnosis_codes": [d.upper() for d in line.diagnosis_codes],
             "service_date": line.service_date,
             "billed_cents": None if line.billed_dollars is None
             else int(line.billed_dollars * 100),
             "authorization_number": line.authorization_number,
             "provider_credential": (line.provider_credential or "").upper() or None}
            for index, line in enumerate(claim.lines, start=1)]


def _from_fhir(resource: Mapping[str, Any], payers: PayerNormalizer) -> list[dict[str, Any]]:
    # The patient key is never stored or returned here: a throwaway key hashes it.
    ctx = TenantContext("check", PatientHasher(secrets.token_bytes(32)), payers,
                        datetime.now(UTC))
    result = map_resource(dict(resource), ctx)
    if not result.lines:
        reason = result.issues[0].detail if result.issues else "no service lines"
        raise CheckError(f"FHIR Claim not usable: {reason}")
    if len(result.lines) > MAX_LINES:
        raise CheckError(f"lines: at most {MAX_LINES}")
    return [line.model_dump(mode="python") for line in result.lines]


def check(lines: Sequence[Mapping[str, Any]], history: DenialHistory, rules: RulesTable,
          auths: Sequence[Mapping[str, Any]] = (),
          model: RiskModel | None = None) -> dict[str, Any]:
    scored: list[LineScore] = []
    for line, extra in zip(lines, claim_factors(lines), strict=True):
        found = score_line(line, history, rules, auths, extra)
        scored.append(model.rescore(found, line) if model else found)
    verdict = claim_verdict(scored)
    return {**verdict, "claim_id": scored[0].claim_id,
            "method": scored[0].method,
            "lines": [_line_json(s) for s in scored],
            "rules_conflicts": list(rules.conflicts)}


def _line_json(found: LineScore) -> dict[str, Any]:
    return {"line": found.line, "score": found.score, "category": found.category,
            "recommendation": found.recommendation,
            "denial_probability": found.denial_probability, "reasons": list(found.reasons),
            "factors": [{"name": f.name, "points": f.points, "evidence": f.evidence}
                        for f in found.factors],
            "fixes": [x.to_json() for x in found.fixes]}
