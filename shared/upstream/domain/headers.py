"""Column headers → record fields, for exports from any EHR or billing system.

Headers are compared after folding case, punctuation and spacing (`Claim #`, `CLAIM_NUMBER`
and `claim number` are one header). List fields (modifiers, diagnoses, adjustment codes) may
span several numbered columns (`Mod 1`, `Mod 2`, `Dx1`…`Dx12`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from upstream.domain.records import RecordKind

CLAIM_ALIASES: dict[str, tuple[str, ...]] = {
    "claim_id": ("claim id", "claim number", "claim", "claim no", "claimid", "claim ref",
                 "claim reference", "invoice", "invoice number", "ticket number",
                 "encounter claim number", "patient control number", "pcn"),
    "line": ("line", "line number", "service line", "charge line", "ln", "line no",
             "line item", "svc line"),
    "patient_id": ("patient id", "patient", "mrn", "patient number", "patient account",
                   "account number", "acct", "chart number", "pt id", "patient mrn",
                   "member id", "subscriber id", "client id", "patient account number"),
    "payer": ("payer", "payer name", "primary insurance", "insurance", "insurance name",
              "carrier", "primary payer", "ins", "insurance company", "payor", "payor name",
              "primary carrier", "plan name"),
    "plan_type": ("plan type", "product", "insurance type", "financial class", "plan",
                  "coverage type"),
    "cpt": ("cpt", "cpt code", "procedure code", "hcpcs", "procedure", "proc code",
            "service code", "cpt hcpcs", "hcpcs code", "code", "cpt hcpcs code", "billing code"),
    "modifiers": ("modifier", "modifiers", "mod", "mods", "cpt modifier", "procedure modifier"),
    "units": ("units", "unit", "qty", "quantity", "service units", "days or units",
              "billed units"),
    "diagnosis_codes": ("diagnosis", "diagnosis codes", "diagnosis code", "dx", "dx code",
                        "dx codes", "icd", "icd10", "icd 10", "icd code", "icd 10 code",
                        "primary diagnosis"),
    "service_date": ("dos", "date of service", "service date", "from date", "dos from",
                     "svc date", "visit date", "appointment date", "session date",
                     "service from", "date"),
    "submitted_date": ("submitted", "submit date", "submitted date", "billed date",
                       "claim date", "date billed", "bill date", "sent date", "date submitted",
                       "submission date", "filed date"),
    "decided_date": ("paid date", "payment date", "adjudication date", "decision date",
                     "date paid", "remit date", "processed date", "check date", "eob date",
                     "denial date", "adjudicated date", "date adjudicated", "era date",
                     "posted date", "decided date"),
    "outcome": ("status", "claim status", "line status", "outcome", "claim outcome",
                "payment status"),
    "billed_cents": ("billed", "billed amount", "charge", "charges", "charge amount",
                     "total charges", "amount billed", "billed charges", "total charge",
                     "line charge", "billed amt", "charge amt"),
    "allowed_cents": ("allowed", "allowed amount", "allowable", "contracted amount",
                      "expected", "allowed amt", "expected amount"),
    "paid_cents": ("paid", "paid amount", "payment", "amount paid", "insurance paid",
                   "payer paid", "ins paid", "payment amount", "paid amt", "insurance payment"),
    "carc_codes": ("denial reason", "carc", "adj codes", "adjustment codes", "reason code",
                   "denial code", "carc codes", "adjustment reason", "adj code",
                   "denial reason code", "adjustment reason code", "reason codes",
                   "denial codes", "adjustment code", "claim adjustment reason code"),
    "rarc_codes": ("rarc", "remark codes", "remark code", "rarc codes", "remarks"),
    "authorization_number": ("auth", "auth number", "authorization", "authorization number",
                             "prior auth", "pa number", "prior authorization", "auth no",
                             "auth id", "prior authorization number"),
    "provider_npi": ("npi", "rendering npi", "provider npi", "rendering provider npi",
                     "servicing npi"),
    "provider_credential": ("credential", "provider credential", "rendering credential",
                            "provider type", "credentials"),
    "minutes": ("minutes", "duration", "session minutes", "time min", "mins",
                "duration minutes", "treatment minutes"),
    "place_of_service": ("pos", "place of service", "pos code", "place of service code"),
}

AUTH_ALIASES: dict[str, tuple[str, ...]] = {
    "authorization_number": CLAIM_ALIASES["authorization_number"],
    "patient_id": CLAIM_ALIASES["patient_id"],
    "payer": CLAIM_ALIASES["payer"],
    "service_type": ("service type", "service", "auth type", "discipline", "service category",
                     "type of service"),
    "cpt_codes": ("cpt codes", "cpt", "codes", "procedure codes", "authorized codes",
                  "cpt code", "procedure code", "hcpcs", "authorized cpt"),
    "start_date": ("start", "start date", "auth start", "from", "effective date", "begin date",
                   "auth start date", "from date", "effective"),
    "end_date": ("end", "end date", "auth end", "to", "expiration date", "expires", "thru",
                 "auth end date", "through date", "to date", "expiration", "exp date"),
    "units_authorized": ("units authorized", "authorized units", "approved units",
                         "total units", "visits authorized", "authorized visits", "auth units",
                         "units approved"),
    "units_used": ("units used", "used units", "units utilized", "visits used",
                   "units consumed", "used"),
    "units_requested": ("units requested", "requested units", "requested", "units req",
                        "visits requested", "requested visits"),
    "decision": ("decision", "determination", "auth decision", "auth status",
                 "authorization status", "review decision", "outcome"),
    "decision_date": ("decision date", "determination date", "decided", "decided date",
                      "approval date", "approved date", "review date"),
}

LIST_FIELDS = frozenset({"modifiers", "diagnosis_codes", "carc_codes", "rarc_codes", "cpt_codes"})

REQUIRED: dict[RecordKind, tuple[tuple[str, ...], ...]] = {
    # Contract 2: claim id, payer, cpt and at least one date.
    RecordKind.CLAIMS: (("claim_id",), ("payer",), ("cpt",),
                        ("service_date", "submitted_date", "decided_date")),
    RecordKind.AUTHORIZATIONS: (("authorization_number",), ("payer",), ("start_date",),
                                ("end_date",)),
}


def fold(header: str) -> str:
    """`Claim #` → `claim number`; `CPT/HCPCS` → `cpt hcpcs`; `Time (min)` → `time min`."""
    text = header.replace("\ufeff", "").replace("#", " number ").lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def _lookup(aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold(alias): name for name, names in aliases.items() for alias in names}


_LOOKUPS = {RecordKind.CLAIMS: _lookup(CLAIM_ALIASES),
            RecordKind.AUTHORIZATIONS: _lookup(AUTH_ALIASES)}


@dataclass(slots=True)
class ColumnMap:
    """Which columns feed which field, and what was left over."""

    kind: RecordKind
    columns: dict[str, list[int]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    ignored_duplicates: list[str] = field(default_factory=list)

    def missing_required(self) -> list[str]:
        return [" or ".join(group) for group in REQUIRED[self.kind]
                if not any(name in self.columns for name in group)]


def map_columns(header: list[str], kind: RecordKind) -> ColumnMap:
    lookup = _LOOKUPS[kind]
    mapping = ColumnMap(kind)
    for index, raw in enumerate(header):
        folded = fold(raw)
        name = lookup.get(folded)
        if name is None:
            # Numbered list columns: "Mod 2", "Dx1", "Adj Code 3".
            base = re.sub(r"\s*\d+$", "", folded)
            candidate = lookup.get(base)
            name = candidate if candidate in LIST_FIELDS else None
        if name is None:
            if raw.strip():
                mapping.unknown.append(raw.strip())
            continue
        if name in mapping.columns and name not in LIST_FIELDS:
            mapping.ignored_duplicates.append(raw.strip())
            continue
        mapping.columns.setdefault(name, []).append(index)
    return mapping


def detect_kind(header: list[str]) -> RecordKind:
    """Authorizations files have date ranges and unit budgets; claim files have neither."""
    auth = map_columns(header, RecordKind.AUTHORIZATIONS).columns
    claims = map_columns(header, RecordKind.CLAIMS).columns
    auth_only = {"start_date", "end_date", "units_authorized", "units_used"}
    if len(auth_only & auth.keys()) >= 2 and "claim_id" not in claims:
        return RecordKind.AUTHORIZATIONS
    return RecordKind.CLAIMS


def header_test(kinds: Sequence[RecordKind]) -> Callable[[list[str]], bool]:
    """A row is the header when it names every required column of one of `kinds`."""
    return lambda cells: any(not map_columns(cells, kind).missing_required() for kind in kinds)
