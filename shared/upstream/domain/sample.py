"""A year of realistic, messy claim lines and authorizations for a specialty practice.

Each payer has its own volume share, denial rate, CARC mix and payment lag; sessions follow
weekday and holiday patterns; payers adjudicate on business days only. The files come in
the export styles seen in the field (BOM, semicolons, tabs, US/ISO/Excel dates, `$1,234.50`
and `(12.00)`, glued modifiers, payer spellings) with a small share of broken rows, so the
demo and the benchmark exercise the same ingestion paths real uploads do. Optional
injected shifts (a payer starts denying more, or paying later) give detectors something
to find; the ground truth is returned with the data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from upstream.domain.calendar import add_business_days, federal_holidays
from upstream.domain.specialty.sample_requests import decide, earlier_requests
from upstream.domain.x12_writer import Clp, Remit, Svc, write_835


@dataclass(frozen=True, slots=True)
class PayerProfile:
    name: str
    spellings: tuple[str, ...]
    share: float
    denial_rate: float
    lag_days: float  # median submission → decision, business days
    allowed_ratio: float  # allowed / billed
    carcs: tuple[tuple[str, float], ...]
    plan_type: str


PAYERS: tuple[PayerProfile, ...] = (
    PayerProfile("UnitedHealthcare", ("UHC", "United Healthcare", "UnitedHealthcare"),
                 0.16, 0.09, 14, 0.72, (("CO-197", 3), ("CO-16", 2), ("CO-45", 1)), "Commercial"),
    PayerProfile("Aetna", ("Aetna", "AETNA", "Aetna Health"), 0.12, 0.07, 12, 0.75,
                 (("CO-16", 2), ("CO-97", 2), ("CO-252", 1)), "Commercial"),
    PayerProfile("Cigna", ("Cigna", "CIGNA Healthcare"), 0.09, 0.08, 15, 0.74,
                 (("CO-50", 2), ("CO-16", 2)), "Commercial"),
    PayerProfile("Blue Cross Blue Shield of Texas", ("BCBS of Texas", "BCBSTX"), 0.13, 0.06,
                 11, 0.78, (("CO-4", 2), ("CO-197", 2), ("CO-29", 1)), "Commercial"),
    PayerProfile("Medicaid", ("Medicaid", "State Medicaid"), 0.15, 0.12, 21, 0.55,
                 (("CO-16", 3), ("CO-197", 2), ("CO-18", 1)), "Medicaid"),
    PayerProfile("Humana", ("Humana", "Humana Health Plan"), 0.06, 0.10, 18, 0.70,
                 (("CO-50", 2), ("CO-96", 1)), "Medicare Advantage"),
    PayerProfile("Optum", ("Optum", "Optum Behavioral Health", "UBH"), 0.07, 0.11, 16, 0.70,
                 (("CO-197", 3), ("CO-15", 1)), "Commercial"),
    PayerProfile("TRICARE", ("TRICARE", "Tricare East"), 0.06, 0.05, 24, 0.80,
                 (("CO-16", 1), ("CO-27", 1)), "Military"),
    PayerProfile("Anthem", ("Anthem", "Anthem Blue Cross"), 0.06, 0.08, 13, 0.73,
                 (("CO-197", 2), ("CO-11", 1)), "Commercial"),
    PayerProfile("Molina Healthcare", ("Molina", "Molina Healthcare"), 0.05, 0.14, 25, 0.56,
                 (("CO-16", 2), ("CO-18", 2), ("CO-197", 1)), "Medicaid"),
    PayerProfile("Magellan Health", ("Magellan", "Magellan Health"), 0.03, 0.09, 19, 0.68,
                 (("CO-197", 2), ("CO-4", 1)), "Commercial"),
    PayerProfile("Lone Star Community Plan", ("Lone Star Community Plan",), 0.02, 0.13, 28,
                 0.60, (("CO-16", 1), ("CO-96", 1)), "Commercial"),
)

# ABA (CPT 97151–97158) and PT/OT codes with typical charges (cents) per unit and units/line.
PROCEDURES: tuple[tuple[str, int, int, int, str], ...] = (
    # cpt, cents per unit, min units, max units, modifier
    ("97153", 3000, 4, 16, "HM"),
    ("97155", 4500, 2, 8, "HO"),
    ("97156", 4500, 2, 6, "HO"),
    ("97151", 5000, 4, 24, "HO"),
    ("97154", 1200, 4, 12, "HM"),
    ("97158", 1500, 2, 6, "HO"),
    ("97530", 4000, 1, 4, "GP"),
    ("97110", 3500, 1, 4, "GP"),
)
PROCEDURE_WEIGHTS = (46, 18, 8, 2, 4, 2, 12, 8)
DIAGNOSES = ("F840", "F84.0", "F809", "R625", "F900", "M6281")
WEEKDAY_VOLUME = (1.0, 1.05, 1.05, 1.0, 0.85, 0.2, 0.0)  # Mon..Sun
DAILY_JITTER = 0.25  # day-to-day variation beyond Poisson (overdispersion)


@dataclass(frozen=True, slots=True)
class Shift:
    """An injected change: from `start`, `payer`'s denial rate × `denial_factor` and its
    lag + `extra_lag_days`."""

    payer: str
    start: date
    denial_factor: float = 1.0
    extra_lag_days: int = 0


@dataclass(slots=True)
class SampleData:
    claims: list[dict[str, Any]]
    authorizations: list[dict[str, Any]]
    shifts: list[Shift]
    files: dict[str, bytes] = field(default_factory=dict)



def authorization_number(patient: str) -> str:
    """A payer's authorization number for the patient's ABA authorization: stable per patient
    but not derived visibly from the patient id (a real one never embeds the practice's MRN,
    and the PHI scan looks for MRNs everywhere)."""
    return "PA" + hashlib.sha256(f"auth|{patient}".encode()).hexdigest()[:8].upper()

def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is fine for the daily means used here (< 500 after splitting).
    if mean > 50:
        return max(0, round(rng.gauss(mean, mean ** 0.5)))
    threshold, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def generate(start: date, end: date, *, lines_per_day: float = 60.0, patients: int = 150,
             seed: int = 7, shifts: list[Shift] | None = None,
             as_of: date | None = None) -> SampleData:
    """Claim lines with service dates in [start, end]; outcomes known as of `as_of`
    (default `end`), later decisions stay PENDING."""
    rng = random.Random(seed)
    as_of = as_of or end
    shifts = list(shifts or [])
    shares = [p.share for p in PAYERS]
    patient_payer = {str(100000 + i): rng.choices(PAYERS, shares)[0] for i in range(patients)}
    patient_ids = list(patient_payer)
    holidays = {d for y in range(start.year, end.year + 1) for d in federal_holidays(y)}
    claims: list[dict[str, Any]] = []
    claim_seq = 0
    day = start
    while day <= end:
        factor = 0.0 if day in holidays else WEEKDAY_VOLUME[day.weekday()]
        mean = lines_per_day * factor * max(0.0, rng.gauss(1.0, DAILY_JITTER))
        remaining = _poisson(rng, mean) if mean > 0 else 0
        while remaining > 0:
            patient = rng.choice(patient_ids)
            payer = patient_payer[patient]
            claim_seq += 1
            n_lines = min(remaining, rng.choice((1, 1, 2, 2, 3)))
            remaining -= n_lines
            submitted = add_business_days(day, rng.choice((1, 1, 2, 3, 5)))
            lag = max(2, round(rng.lognormvariate(0, 0.35) * payer.lag_days))
            for line in range(1, n_lines + 1):
                claims.append(_line(rng, f"CLM{claim_seq:07d}", line, patient, payer, day,
                                    submitted, lag, as_of, shifts))
        day += timedelta(days=1)
    auths = _size_authorizations(rng, _authorizations(rng, patient_payer, start, end), claims)
    auths = decide(rng, auths, patient_payer) + earlier_requests(rng, auths, patient_payer)
    return SampleData(claims, auths, shifts)


def _size_authorizations(rng: random.Random, auths: list[dict[str, Any]],
                         claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units authorized in line with the sessions actually delivered: most authorizations
    cover their case with room to spare, about one in six is too small and runs out early
    (what the calendar's unit-exhaustion check is for)."""
    by_number = {a["authorization_number"]: a for a in auths}
    used: dict[str, float] = {}
    last_service: dict[str, Any] = {}
    for line in claims:
        auth = by_number.get(line.get("authorization_number"))
        if auth and line["cpt"] in auth["cpt_codes"] and (
                auth["start_date"] <= line["service_date"] <= auth["end_date"]):
            number = auth["authorization_number"]
            used[number] = used.get(number, 0) + line["units"]
            last_service[number] = max(last_service.get(number, line["service_date"]),
                                       line["service_date"])
    for auth in auths:
        number = auth["authorization_number"]
        delivered = used.get(number, 0.0)
        # Sessions run past the data's end: project the pace over the whole authorization.
        seen = max(1, ((last_service.get(number) or auth["start_date"])
                       - auth["start_date"]).days)
        expected = delivered * max(1.0, (auth["end_date"] - auth["start_date"]).days / seen)
        auth["units_authorized"] = max(40, round(expected * rng.choice(
            (0.85, 1.1, 1.2, 1.3, 1.4, 1.5)) / 10) * 10)
        auth["units_used"] = None
    return auths


def _line(rng: random.Random, claim_id: str, line: int, patient: str, payer: PayerProfile,
          dos: date, submitted: date, lag: int, as_of: date,
          shifts: list[Shift]) -> dict[str, Any]:
    cpt, cents, lo, hi, modifier = rng.choices(PROCEDURES, PROCEDURE_WEIGHTS)[0]
    units = rng.randint(lo, hi)
    billed = cents * units
    denial_rate, extra_lag = payer.denial_rate, 0
    for shift in shifts:
        if shift.payer == payer.name and dos >= shift.start:
            denial_rate = min(0.95, denial_rate * shift.denial_factor)
            extra_lag += shift.extra_lag_days
    decided = add_business_days(submitted, lag + extra_lag)
    record: dict[str, Any] = {
        "claim_id": claim_id, "line": line, "patient_id": patient, "payer": payer.name,
        "plan_type": payer.plan_type, "cpt": cpt, "modifiers": [modifier], "units": units,
        "diagnosis_codes": [rng.choice(DIAGNOSES)], "service_date": dos,
        "submitted_date": submitted if submitted <= as_of else None,
        "decided_date": None, "outcome": "PENDING", "billed_cents": billed,
        "allowed_cents": None, "paid_cents": None, "carc_codes": [],
        "authorization_number": authorization_number(patient), "minutes": units * 15,
        "provider_npi": f"1{rng.randint(100000000, 999999999)}", "place_of_service": "12",
    }
    if submitted > as_of or decided > as_of:
        return record
    record["decided_date"] = decided
    allowed = round(billed * payer.allowed_ratio)
    record["allowed_cents"] = allowed
    if rng.random() < denial_rate:
        codes, weights = zip(*payer.carcs, strict=True)
        record.update(outcome="DENIED", paid_cents=0, carc_codes=[rng.choices(codes, weights)[0]])
    elif rng.random() < 0.12:
        patient_share = round(allowed * rng.choice((0.1, 0.2, 0.3)))
        record.update(outcome="PARTIAL", paid_cents=allowed - patient_share,
                      carc_codes=["CO-45", rng.choice(("PR-1", "PR-2", "PR-3"))])
    else:
        record.update(outcome="PAID", paid_cents=allowed, carc_codes=["CO-45"])
    return record


def _authorizations(rng: random.Random, patient_payer: dict[str, PayerProfile], start: date,
                    end: date) -> list[dict[str, Any]]:
    auths = []
    for patient, payer in patient_payer.items():
        auth_start = start + timedelta(days=rng.randint(0, 120))
        # Six-month ABA authorizations; some end soon after the data does.
        auth_end = max(end - timedelta(days=20), auth_start + timedelta(days=182))
        auth_end += timedelta(days=rng.randint(-10, 60))
        authorized = rng.choice((240, 360, 480, 520))
        auths.append({
            "authorization_number": authorization_number(patient), "patient_id": patient,
            "payer": payer.name, "service_type": "ABA",
            "cpt_codes": ["97153", "97155", "97156"], "start_date": auth_start,
            "end_date": auth_end, "units_authorized": authorized,
            "units_used": round(authorized * rng.uniform(0.3, 1.05)),
        })
    return auths


# --- Export styles -------------------------------------------------------------------------

def _us(d: date | None) -> str:
    return "" if d is None else f"{d.month:02d}/{d.day:02d}/{d.year}"


def _us_short(d: date | None) -> str:
    return "" if d is None else f"{d.month}/{d.day}/{d.year % 100:02d}"


def _excel(d: date | None) -> str:
    return "" if d is None else str((d - date(1899, 12, 30)).days)


def _iso(d: date | None) -> str:
    return "" if d is None else d.isoformat()


def _dollars(cents: int | None) -> str:
    return "" if cents is None else f"${cents / 100:,.2f}"


def _plain(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def _status(outcome: str, style: int) -> str:
    return {0: outcome.title(), 1: outcome.lower(),
            2: {"PAID": "Closed", "DENIED": "Denied", "PARTIAL": "Partially Paid",
                "PENDING": "Submitted"}.get(outcome, outcome)}[style]


STYLES: dict[str, dict[str, Any]] = {
    # An athenaOne-like report: BOM, US dates, dollars with $ and commas.
    "athena": {"delimiter": ",", "encoding": "utf-8-sig",
               "header": ["Claim #", "Line", "Patient ID", "Primary Insurance", "CPT Code",
                          "Mod 1", "Units", "Dx1", "DOS", "Date Billed", "Paid Date",
                          "Billed", "Allowed", "Paid", "Claim Status", "Denial Reason",
                          "Auth #", "Rendering NPI", "POS", "Minutes"]},
    # A practice-management export: semicolons, Latin-1, glued modifiers, ISO dates.
    "pm_semicolon": {"delimiter": ";", "encoding": "latin-1",
                     "header": ["Claim Number", "Patient Account", "Payer Name",
                                "Procedure Code", "Qty", "Diagnosis", "Date of Service",
                                "Submitted Date", "Payment Date", "Charge Amount",
                                "Payment", "Status", "Adj Codes", "Authorization Number",
                                "Comments"]},
    # A spreadsheet saved as tab-separated text: Excel serial dates, HCPCS, M/D/YY.
    "spreadsheet_tab": {"delimiter": "\t", "encoding": "utf-8",
                        "header": ["claim_id", "MRN", "Insurance", "HCPCS", "Modifier",
                                   "Units", "ICD-10", "Service Date", "Bill Date",
                                   "Remit Date", "Total Charges", "Insurance Paid",
                                   "Claim Status", "CARC"]},
}


def _style_row(style: str, r: dict[str, Any], rng: random.Random) -> list[str]:
    spelling = rng.choice(next(p.spellings for p in PAYERS if p.name == r["payer"]))
    mods = r["modifiers"]
    carcs = r["carc_codes"]
    if style == "athena":
        return [r["claim_id"], str(r["line"]), r["patient_id"], spelling, r["cpt"],
                mods[0] if mods else "", str(r["units"]), r["diagnosis_codes"][0],
                _us(r["service_date"]), _us(r["submitted_date"]), _us(r["decided_date"]),
                _dollars(r["billed_cents"]), _dollars(r["allowed_cents"]),
                _dollars(r["paid_cents"]), _status(r["outcome"], 0), ", ".join(carcs),
                r["authorization_number"], r["provider_npi"], r["place_of_service"],
                str(r["minutes"])]
    if style == "pm_semicolon":
        glue = rng.choice(("-", " "))
        return [r["claim_id"], f"{r['patient_id']}.0", spelling,
                r["cpt"] + (glue + mods[0] if mods else ""), f"{r['units']}.0",
                r["diagnosis_codes"][0], _iso(r["service_date"]), _iso(r["submitted_date"]),
                _iso(r["decided_date"]), _plain(r["billed_cents"]), _plain(r["paid_cents"]),
                _status(r["outcome"], 1), ";".join(c.replace("-", "") for c in carcs),
                r["authorization_number"], rng.choice(("", "", "", "vérifié", "rappel"))]
    return [r["claim_id"], r["patient_id"].zfill(8), spelling, f"{r['cpt']}.0",
            mods[0] if mods else "", str(r["units"]), r["diagnosis_codes"][0],
            _excel(r["service_date"]), _us_short(r["submitted_date"]),
            _us_short(r["decided_date"]), _plain(r["billed_cents"]),
            _plain(r["paid_cents"]), _status(r["outcome"], 2), " ".join(carcs)]


# Broken rows a real export carries: each must end in the rejects file, never silently.
_BROKEN: tuple[tuple[str, int], ...] = (("cpt", 3), ("date", 3), ("payer", 2), ("formula", 1))


def _break(style: str, cells: list[str], kind: str) -> list[str]:
    header = STYLES[style]["header"]
    cells = list(cells)
    index = {"cpt": 4 if style == "athena" else 3, "payer": 3 if style == "athena" else 2,
             "date": 8 if style == "athena" else (6 if style == "pm_semicolon" else 7)}
    if kind == "cpt":
        cells[index["cpt"]] = "UNKNOWN"
    elif kind == "date":
        cells[index["date"]] = "13/45/2024"
    elif kind == "payer":
        cells[index["payer"]] = ""
    elif kind == "formula":
        cells[index["cpt"]] = '=HYPERLINK("http://example.invalid","x")'
    assert len(cells) == len(header)
    return cells


def export_claims(records: list[dict[str, Any]], style: str, *, seed: int = 7,
                  broken_share: float = 0.004, duplicate_share: float = 0.002) -> bytes:
    """One export file in `style`, with a few broken and duplicated rows mixed in."""
    rng = random.Random(seed)
    spec = STYLES[style]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=spec["delimiter"], lineterminator="\r\n")
    writer.writerow(spec["header"])
    kinds, weights = zip(*_BROKEN, strict=True)
    for record in records:
        cells = _style_row(style, record, rng)
        if rng.random() < broken_share:
            cells = _break(style, cells, rng.choices(kinds, weights)[0])
        writer.writerow(cells)
        if rng.random() < duplicate_share:
            writer.writerow(cells)
    return out.getvalue().encode(spec["encoding"], errors="replace")


def iter_export_chunks(records: Iterator[dict[str, Any]], style: str,
                       seed: int = 7) -> Iterator[bytes]:
    """Streamed variant for very large files (benchmarks): header then one chunk per row."""
    rng = random.Random(seed)
    spec = STYLES[style]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=spec["delimiter"], lineterminator="\r\n")
    writer.writerow(spec["header"])
    for record in records:
        writer.writerow(_style_row(style, record, rng))
        if out.tell() > 1 << 16:
            yield out.getvalue().encode(spec["encoding"], errors="replace")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode(spec["encoding"], errors="replace")


def export_authorizations(auths: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Auth Number", "Patient ID", "Payer", "Service Type", "CPT Codes",
                     "Start Date", "End Date", "Units Authorized", "Units Used",
                     "Units Requested", "Decision", "Decision Date"])
    for a in auths:
        decided = a.get("decision_date")
        writer.writerow([a["authorization_number"], a["patient_id"], a["payer"],
                         a["service_type"], ", ".join(a["cpt_codes"]), _us(a["start_date"]),
                         _us(a["end_date"]), a["units_authorized"], a["units_used"],
                         a.get("units_requested") or "", (a.get("decision") or "").title(),
                         _us(decided) if decided else ""])
    return out.getvalue().encode("utf-8")


# The last two weeks of decisions reach the practice as 835 remittances, not yet in its
# export: the claims files show those lines as submitted, the 835 decides them.
REMITTED_DAYS = 14


def _undecided(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "outcome": "PENDING", "decided_date": None, "paid_cents": None,
            "allowed_cents": None, "carc_codes": []}


def _dollars_x12(cents: int) -> str:
    return f"{cents / 100:.2f}"


def _service(record: dict[str, Any]) -> Svc:
    billed, paid = record["billed_cents"], record["paid_cents"] or 0
    allowed = record["allowed_cents"] if record["allowed_cents"] is not None else billed
    adjustments: list[tuple[str, str, str]] = []
    for code in record["carc_codes"]:
        group, _, reason = code.rpartition("-")
        group = group or "CO"
        if record["outcome"] == "DENIED":
            amount = billed
        elif reason == "45":
            amount = billed - allowed
        else:  # the patient's share
            amount = allowed - paid
        adjustments.append((group, reason, _dollars_x12(amount)))
    return Svc(code=record["cpt"], billed=_dollars_x12(billed), paid=_dollars_x12(paid),
               day=record["service_date"].strftime("%Y%m%d"),
               modifiers=tuple(record["modifiers"]), cas=tuple(adjustments),
               line_ref=str(record["line"]), units=str(record["units"]))


def remittance_file(records: list[dict[str, Any]]) -> bytes:
    """One interchange, one transaction set per (payer, payment date), lines grouped by claim;
    a claim whose lines were all denied says so in CLP02 (4)."""
    remits: dict[tuple[str, date], dict[str, list[dict[str, Any]]]] = {}
    for record in records:
        key = (record["payer"], record["decided_date"])
        remits.setdefault(key, {}).setdefault(record["claim_id"], []).append(record)
    built = []
    for (payer, day), claims in sorted(remits.items()):
        clps = []
        for claim_id, lines in claims.items():
            denied = all(line["outcome"] == "DENIED" for line in lines)
            clps.append(Clp(claim_id=claim_id, status="4" if denied else "1",
                            billed=_dollars_x12(sum(x["billed_cents"] for x in lines)),
                            paid=_dollars_x12(sum(x["paid_cents"] or 0 for x in lines)),
                            services=[_service(line) for line in lines]))
        built.append(Remit(payer.upper(), day.strftime("%Y%m%d"), clps))
    return write_835(built)


def monthly_files(data: SampleData, seed: int = 7) -> dict[str, bytes]:
    """`claims/<YYYY-MM>-<style>.csv` per service month (styles rotate, as practices switch
    systems), `authorizations/authorizations.csv`, and `remittance/era-<date>.835` with the
    last `REMITTED_DAYS` days of decisions (left undecided in the claims files)."""
    decided = [r["decided_date"] for r in data.claims if r["decided_date"]]
    cutoff = date.fromordinal(max(decided).toordinal() - REMITTED_DAYS + 1) if decided else None
    remitted = [r for r in data.claims if cutoff and r["decided_date"]
                and r["decided_date"] >= cutoff]
    exported = [_undecided(r) if cutoff and r["decided_date"] and r["decided_date"] >= cutoff
                else r for r in data.claims]
    by_month: dict[str, list[dict[str, Any]]] = {}
    for record in exported:
        by_month.setdefault(record["service_date"].strftime("%Y-%m"), []).append(record)
    styles = list(STYLES)
    files = {}
    for i, (month, records) in enumerate(sorted(by_month.items())):
        style = styles[i % len(styles)]
        ext = "tsv" if style == "spreadsheet_tab" else "csv"
        files[f"claims/{month}-{style}.{ext}"] = export_claims(records, style, seed=seed + i)
    files["authorizations/authorizations.csv"] = export_authorizations(data.authorizations)
    if remitted and cutoff:
        files[f"remittance/era-{cutoff.isoformat()}.835"] = remittance_file(remitted)
    return files
