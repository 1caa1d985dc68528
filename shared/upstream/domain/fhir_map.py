"""FHIR Claim, ClaimResponse, ExplanationOfBenefit, Coverage and Bundles → our records.

Every resource is validated with `fhir.resources`: R4B first (athenahealth and Epic send R4,
which R4B reads for these resources), then R5, whatever the resource claims to be. A
resource neither accepts, or one we cannot use, becomes a `MappingIssue` with a reason:
mapping never raises for input.

Mapping reads the validated JSON (one code path for both versions) and reuses the CSV
parsers, so a CPT code, a payer name or an amount means the same whichever way it came.
- Claim → one `ClaimLine` per `item` (PENDING until an adjudication says otherwise).
- ExplanationOfBenefit → lines with their outcomes (it carries the items and the
  adjudication), paid amounts from the `benefit` category, CARC codes from
  `adjudication.reason` (X12 CARC system, or the CARIN `denialreason` slice).
- ClaimResponse → `OutcomeUpdate`s for the lines of the claim it answers; storage joins them
  to the lines (an outcome may arrive before its claim).
- Coverage → `CoverageFact` (payer, plan, period, member) for authorization checks.
- `entered-in-error` and Bundle `DELETE` entries → the lines are voided, never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from pydantic import ValidationError

from upstream.domain.fhir_input import Unreadable
from upstream.domain.fhir_preauth import preauthorization
from upstream.domain.fhir_values import fhir_day as _day
from upstream.domain.fhir_values import reference_id as _reference_id
from upstream.domain.ingest import TenantContext
from upstream.domain.records import Authorization, ClaimLine, Outcome, Source
from upstream.domain.values import InvalidValue, parse_procedure, split_adjustment_codes

MAPPED = ("Claim", "ClaimResponse", "ExplanationOfBenefit", "Coverage")
ECHO_LIMIT = 200
PROCEDURE_SYSTEMS = frozenset({
    "http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12",
    "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
    "http://terminology.hl7.org/CodeSystem/HCPCS", "urn:oid:2.16.840.1.113883.6.285",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    # CDT (dental): the ADA's canonical URI, its OID, and the older HL7 name
    "http://www.ada.org/cdt", "urn:oid:2.16.840.1.113883.6.13",
    "http://terminology.hl7.org/CodeSystem/CD2"})
CARC_SYSTEMS = ("https://x12.org/codes/claim-adjustment-reason-codes",
                "http://terminology.hl7.org/CodeSystem/claim-adjustment-reason-codes")
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"


@dataclass(frozen=True, slots=True)
class MappingIssue:
    resource_type: str
    resource_id: str | None
    reason: str
    detail: str

    def __post_init__(self) -> None:
        # What a resource says about itself is echoed into reports, logs and Firestore:
        # bounded, so a 50 MB id costs 200 characters, not a 50 MB report.
        for name in ("resource_type", "resource_id", "detail"):
            value = getattr(self, name)
            if isinstance(value, str) and len(value) > ECHO_LIMIT:
                object.__setattr__(self, name, value[:ECHO_LIMIT] + "…")
            elif value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value)[:ECHO_LIMIT])


@dataclass(frozen=True, slots=True)
class OutcomeUpdate:
    claim_id: str
    line_key: str
    outcome: Outcome
    paid_cents: int | None
    allowed_cents: int | None
    carc_codes: tuple[str, ...]
    decided_date: date | None


@dataclass(frozen=True, slots=True)
class CoverageFact:
    coverage_id: str
    payer: str
    patient_key: str | None
    plan: str | None
    start_date: date | None
    end_date: date | None
    status: str | None


@dataclass(slots=True)
class MappingResult:
    lines: list[ClaimLine] = field(default_factory=list)
    outcomes: list[OutcomeUpdate] = field(default_factory=list)
    coverages: list[CoverageFact] = field(default_factory=list)
    authorizations: list[Authorization] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def extend(self, other: MappingResult) -> None:
        self.lines += other.lines
        self.outcomes += other.outcomes
        self.coverages += other.coverages
        self.authorizations += other.authorizations
        self.issues += other.issues
        for target, source in ((self.ignored, other.ignored), (self.versions, other.versions)):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count


def _models(version: str) -> dict[str, Any]:
    if version == "R4B":
        from fhir.resources.R4B import claim, claimresponse, coverage, explanationofbenefit
    else:
        from fhir.resources import claim, claimresponse, coverage, explanationofbenefit  # type: ignore[no-redef]
    return {"Claim": claim.Claim, "ClaimResponse": claimresponse.ClaimResponse,
            "ExplanationOfBenefit": explanationofbenefit.ExplanationOfBenefit,
            "Coverage": coverage.Coverage}


# Elements we never read; a sender's mistake there (test fixtures' placeholder timestamps in
# `meta`, a malformed extension) should not cost the claim. Validated without them second.
UNREAD = ("meta", "text", "extension", "modifierExtension", "contained")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"[:200]
    return str(exc).splitlines()[0][:200]


def validate(resource: dict[str, Any]) -> str:
    """The FHIR version that accepts the resource: `R4B` or `R5`, or `R4B-lenient` /
    `R5-lenient` when it validates only without the elements we never read. ValueError with
    each version's first error if none does."""
    errors = []
    lenient = {k: v for k, v in resource.items() if k not in UNREAD}
    for candidate, suffix in ((resource, ""), (lenient, "-lenient")):
        for version in ("R4B", "R5"):
            try:
                _models(version)[resource["resourceType"]].model_validate(candidate)
                return version + suffix
            except (ValidationError, ValueError, TypeError, LookupError, AttributeError) as exc:
                # fhir.resources raises KeyError for a contained resource whose resourceType
                # names no FHIR type (found by `make fuzz`): as invalid as any other error.
                errors.append(f"{version}{suffix}: {_first_error(exc)}")
    raise ValueError("; ".join(errors))


# --- small readers ----------------------------------------------------------------------------

def _cents(money: Any) -> int | None:
    """FHIR Money → exact integer cents; strings of numbers accepted (some senders quote)."""
    value = money.get("value") if isinstance(money, dict) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except InvalidOperation:
        return None


def _codes(concept: Any) -> list[tuple[str | None, str]]:
    if not isinstance(concept, dict):
        return []
    return [(c.get("system"), str(c["code"])) for c in concept.get("coding") or []
            if isinstance(c, dict) and c.get("code")]


def _payer(resource: dict[str, Any], ctx: TenantContext) -> str | None:
    """The insurer's display name, else the coverage's; else the insurer's identifier or
    reference as given (an unknown payer stays itself, never merged into a known one)."""
    candidates = [resource.get("insurer"), *[
        (i or {}).get("coverage") for i in resource.get("insurance") or []
        if isinstance(i, dict)]]
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("display"):
            return ctx.payers.canonical(str(candidate["display"]))
    for candidate in candidates:
        named = _reference_id(candidate) if isinstance(candidate, dict) else None
        if named:
            return ctx.payers.canonical(named)
    return None


def _procedure(item: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """CPT/HCPCS/CDT from `productOrService` (or R4 `service`); InvalidValue otherwise."""
    codes = _codes(item.get("productOrService") or item.get("service"))
    chosen = [code for system, code in codes if system in PROCEDURE_SYSTEMS or system is None]
    if not chosen:
        systems = sorted({system or "none" for system, _ in codes})
        raise InvalidValue("unsupported_code_system",
                           f"no CPT/HCPCS coding (systems: {', '.join(systems) or 'none'})")
    parsed = parse_procedure(chosen[0])
    if parsed is None:
        raise InvalidValue("missing_cpt", "productOrService has no code")
    code, glued = parsed
    mods = tuple(code for concept in item.get("modifier") or [] for _, code in _codes(concept))
    return code, tuple(dict.fromkeys(glued + mods))


def _diagnoses(resource: dict[str, Any], item: dict[str, Any]) -> tuple[str, ...]:
    by_sequence = {d.get("sequence"): d for d in resource.get("diagnosis") or []
                   if isinstance(d, dict)}
    found = []
    for sequence in item.get("diagnosisSequence") or item.get("diagnosisLinkId") or []:
        concept = (by_sequence.get(sequence) or {}).get("diagnosisCodeableConcept")
        found += [code.replace(".", "") for _, code in _codes(concept)[:1]]
    return tuple(found)


def _npi(resource: dict[str, Any]) -> str | None:
    provider = resource.get("provider")
    identifier = provider.get("identifier") if isinstance(provider, dict) else None
    if isinstance(identifier, dict) and identifier.get("system") == NPI_SYSTEM:
        return str(identifier.get("value"))
    return None


def _adjudication(entries: Any) -> tuple[dict[str, int], list[str]]:
    """Amounts by category code (submitted/eligible/benefit/denied/…), and CARC codes."""
    amounts: dict[str, int] = {}
    reasons: list[str] = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        for _, category in _codes(entry.get("category"))[:1]:
            cents = _cents(entry.get("amount"))
            if cents is not None:
                amounts[category] = amounts.get(category, 0) + cents
            if category == "denialreason":
                reasons += [code for _, code in _codes(entry.get("reason"))]
        for system, code in _codes(entry.get("reason")):
            if system is None or system in CARC_SYSTEMS or "adjustment-reason" in (system or ""):
                reasons.append(code)
    try:
        carcs = split_adjustment_codes(",".join(dict.fromkeys(reasons)))[0] if reasons else ()
    except InvalidValue:
        carcs = ()
    return amounts, list(carcs)


# CARIN Blue Button splits what was paid by recipient instead of one `benefit` amount.
PAID_CATEGORIES = ("benefit", "paidtoprovider", "paidtopatient")


def _paid(amounts: dict[str, int]) -> int | None:
    if "benefit" in amounts:
        return amounts["benefit"]
    found = [amounts[c] for c in PAID_CATEGORIES[1:] if c in amounts]
    return sum(found) if found else None


def _outcome(amounts: dict[str, int], carcs: list[str], resource_outcome: Any) -> Outcome:
    paid = _paid(amounts) or 0
    if paid > 0:
        eligible = amounts.get("eligible") or amounts.get("submitted") or paid
        return Outcome.PARTIAL if paid < eligible and carcs else Outcome.PAID
    if carcs or amounts.get("denied") or resource_outcome in ("error",):
        return Outcome.DENIED
    return Outcome.PENDING if resource_outcome in (None, "queued") else Outcome.DENIED


# --- resources ----------------------------------------------------------------------------

def _lines(resource: dict[str, Any], ctx: TenantContext, result: MappingResult,
           adjudicated: bool) -> None:
    kind, rid = resource["resourceType"], resource.get("id")
    # An EOB's lines are the lines of the claim it explains: same ids, so they join.
    # Without either, the resource's own business identifier (a payer's claim number).
    identifiers = [i.get("value") for i in resource.get("identifier") or []
                   if isinstance(i, dict) and i.get("value")]
    claim_id = ((_reference_id(resource.get("claim")) if adjudicated else None) or rid
                or (str(identifiers[0]) if identifiers else None))
    payer = _payer(resource, ctx)
    if not claim_id or not payer:
        result.issues.append(MappingIssue(kind, rid, "missing_payer" if claim_id else
                                          "missing_id", "no claim id or no insurer/coverage"))
        return
    items = [i for i in resource.get("item") or [] if isinstance(i, dict)]
    if not items:
        result.issues.append(MappingIssue(kind, rid, "no_items", "the claim has no items"))
        return
    voided = resource.get("status") == "entered-in-error"
    patient = _reference_id(resource.get("patient"))
    created = _day(resource.get("created"))
    billable = (resource.get("billablePeriod") or {}).get("start")
    decided = _day((resource.get("payment") or {}).get("date")) or (
        _day(resource.get("created")) if adjudicated else None)
    for index, item in enumerate(items, 1):
        sequence = item.get("sequence") if isinstance(item.get("sequence"), int) else index
        try:
            cpt, modifiers = _procedure(item)
        except InvalidValue as exc:
            result.issues.append(MappingIssue(kind, rid, exc.reason,
                                              f"item {sequence}: {exc}"[:300]))
            continue
        amounts, carcs = _adjudication(item.get("adjudication")) if adjudicated else ({}, [])
        outcome = Outcome.VOID if voided else (
            _outcome(amounts, carcs, resource.get("outcome")) if adjudicated
            else Outcome.PENDING)
        billed = _cents(item.get("net")) or amounts.get("submitted")
        quantity = (item.get("quantity") or {}).get("value")
        service = (item.get("servicedDate") or (item.get("servicedPeriod") or {}).get("start")
                   or billable)
        try:
            result.lines.append(ClaimLine(
                customer_id=ctx.customer_id, claim_id=str(claim_id), line=sequence,
                line_key=f"L{sequence}", patient_key=ctx.hash_patient(patient) if patient else None,
                payer=payer, payer_raw=payer, cpt=cpt, modifiers=modifiers,
                units=float(quantity) if isinstance(quantity, int | float) else None,
                diagnosis_codes=_diagnoses(resource, item), service_date=_day(service),
                submitted_date=created, outcome=outcome,
                decided_date=decided if outcome not in (Outcome.PENDING, Outcome.VOID) else None,
                billed_cents=billed, allowed_cents=amounts.get("eligible"),
                paid_cents=_paid(amounts) if adjudicated else None,
                carc_codes=tuple(carcs), provider_npi=_npi(resource), source=Source.FHIR,
                updated_at=ctx.now))
        except ValidationError as exc:
            result.issues.append(MappingIssue(kind, rid, "invalid_line",
                                              f"item {sequence}: {exc.errors()[0]['msg']}"))


def _claim_response(resource: dict[str, Any], ctx: TenantContext,
                    result: MappingResult) -> None:
    rid = resource.get("id")
    granted = preauthorization(resource, ctx)
    if isinstance(granted, Authorization):
        result.authorizations.append(granted)
    elif granted is not None:
        result.issues.append(MappingIssue("ClaimResponse", rid, *granted))
    claim_id = _reference_id(resource.get("request"))
    if not claim_id and granted is not None:
        return  # a prior-authorization answer: nothing to post on claim lines
    if not claim_id:
        result.issues.append(MappingIssue("ClaimResponse", rid, "missing_request",
                                          "no reference to the claim it answers"))
        return
    decided = _day((resource.get("payment") or {}).get("date")) or _day(resource.get("created"))
    before = len(result.outcomes)
    for item in resource.get("item") or []:
        if not isinstance(item, dict) or not isinstance(item.get("itemSequence"), int):
            continue
        amounts, carcs = _adjudication(item.get("adjudication"))
        result.outcomes.append(OutcomeUpdate(
            claim_id, f"L{item['itemSequence']}",
            Outcome.VOID if resource.get("status") == "entered-in-error"
            else _outcome(amounts, carcs, resource.get("outcome")),
            _paid(amounts), amounts.get("eligible"), tuple(carcs), decided))
    if len(result.outcomes) == before and granted is None:  # header-only, not a pre-auth
        result.issues.append(MappingIssue(
            "ClaimResponse", rid, "no_item_adjudication",
            f"outcome {resource.get('outcome')!r} without item adjudications"))


def _coverage(resource: dict[str, Any], ctx: TenantContext, result: MappingResult) -> None:
    payors = resource.get("payor") or resource.get("insurer") or []
    first = payors[0] if isinstance(payors, list) and payors else payors
    name = (first.get("display") or _reference_id(first)) if isinstance(first, dict) else None
    if not name:
        result.issues.append(MappingIssue("Coverage", resource.get("id"), "missing_payer",
                                          "no payor display"))
        return
    member = _reference_id(resource.get("beneficiary"))
    period = resource.get("period") or {}
    plan = next((c.get("value") for c in resource.get("class") or []
                 if isinstance(c, dict) and c.get("value")), None)
    result.coverages.append(CoverageFact(
        str(resource.get("id")), ctx.payers.canonical(str(name)),
        ctx.hash_patient(member) if member else None, plan, _day(period.get("start")),
        _day(period.get("end")), resource.get("status")))


# What reading a resource of an unexpected shape raises (`"entry": true`, `"request": "x"`):
# the mapper reads many optional elements and validation does not cover a Bundle's own.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def map_resource(resource: Any, ctx: TenantContext) -> MappingResult:
    """One resource (a Bundle: each entry on its own) → records, or issues with reasons. A
    shape the mapper cannot read is an `unmappable` issue for that resource alone (found by
    `make fuzz`), never an exception that would fail its whole delivery."""
    return _guarded(lambda: _map_one(resource, ctx), resource)


def _guarded(read: Callable[[], MappingResult], resource: Any) -> MappingResult:
    try:
        return read()
    except SHAPE_ERRORS as exc:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        rid = resource.get("id") if isinstance(resource, dict) else None
        result = MappingResult()
        result.issues.append(MappingIssue(str(kind or "Bundle.entry"),
                                          rid if isinstance(rid, str) else None, "unmappable",
                                          f"{type(exc).__name__}: {exc}"))
        return result


def _map_one(resource: Any, ctx: TenantContext) -> MappingResult:
    result = MappingResult()
    if isinstance(resource, Unreadable):
        where = f"line {resource.line}" if resource.line else None
        result.issues.append(MappingIssue("unknown", where, resource.reason, resource.detail))
        return result
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        result.issues.append(MappingIssue("unknown", None, "not_fhir", "no resourceType"))
        return result
    kind = resource["resourceType"]
    if kind == "Bundle":
        for entry in resource.get("entry") or []:
            result.extend(_guarded(partial(_map_entry, entry, ctx), entry))
        return result
    if kind not in MAPPED:
        result.ignored[kind] = 1
        return result
    try:
        version = validate(resource)
    except ValueError as exc:
        result.issues.append(MappingIssue(kind, resource.get("id"), "invalid_fhir",
                                          str(exc)[:400]))
        return result
    result.versions[version] = 1
    if kind == "Claim":
        _lines(resource, ctx, result, adjudicated=False)
    elif kind == "ExplanationOfBenefit":
        _lines(resource, ctx, result, adjudicated=True)
    elif kind == "ClaimResponse":
        _claim_response(resource, ctx, result)
    else:
        _coverage(resource, ctx, result)
    return result


def _map_entry(entry: Any, ctx: TenantContext) -> MappingResult:
    if not isinstance(entry, dict):
        result = MappingResult()
        result.issues.append(MappingIssue("Bundle.entry", None, "invalid_entry", "not an object"))
        return result
    request = entry.get("request") or {}
    if request.get("method") == "DELETE":
        return _delete(str(request.get("url", "")))
    if isinstance(entry.get("resource"), dict) and entry["resource"].get(
            "resourceType") in ("SubscriptionStatus", "Parameters"):
        return MappingResult()  # the notification's own status entry
    return map_resource(entry.get("resource"), ctx)


def _delete(url: str) -> MappingResult:
    """`DELETE Claim/123` → the claim's lines voided (line keys unknown here: `*`)."""
    result = MappingResult()
    kind, _, rid = url.partition("/")
    if kind in ("Claim", "ExplanationOfBenefit") and rid:
        result.outcomes.append(OutcomeUpdate(rid.split("?")[0], "*", Outcome.VOID, None, None,
                                             (), None))
    else:
        result.issues.append(MappingIssue(kind or "unknown", rid or None, "unsupported_delete",
                                          url[:200]))
    return result
