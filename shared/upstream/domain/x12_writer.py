"""Writes small, envelope-correct X12 835 interchanges: the sample data set's remittances and
the tests' own 835s (third-party 835s are read as they are, never written here).

One interchange, one functional group, one ST/SE transaction set per (payer, payment date),
as a payer's ERA batch is; segment counts and control numbers are computed, so what this
writes always passes the envelope checks `remittance.read_835` makes (unless `se_delta` asks
for a broken count, which is how the tests make one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Svc:
    code: str
    billed: str
    paid: str
    day: str = "20240105"
    modifiers: tuple[str, ...] = ()
    cas: tuple[tuple[str, str, str], ...] = ()  # (group, carc, amount)
    remarks: tuple[str, ...] = ()
    line_ref: str | None = None
    units: str = "1"


@dataclass
class Clp:
    claim_id: str
    status: str  # CLP02: 1 processed as primary, 4 denied, 22 reversal …
    billed: str
    paid: str
    services: list[Svc] = field(default_factory=list)
    cas: tuple[tuple[str, str, str], ...] = ()


@dataclass
class Remit:
    payer: str
    paid_on: str  # CCYYMMDD: BPR16, the check or EFT date
    claims: list[Clp]


def _transaction(number: int, remit: Remit, se_delta: int) -> list[str]:
    total = sum(float(c.paid) for c in remit.claims)
    body = [
        f"BPR*I*{total:.2f}*C*ACH*CCP*01*888999777*DA*24681012*1935665544**01*111333555*DA*"
        f"144444*{remit.paid_on}",
        f"TRN*1*{7170066655 + number}*1935665544",
        f"DTM*405*{remit.paid_on}",
        f"N1*PR*{remit.payer}",
        "N3*10 SOUTH AVENUE",
        "N4*RAPID CITY*SD*55111",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        "N1*PE*ACME ABA*XX*5544667733",
        "LX*1",
    ]
    for index, claim in enumerate(remit.claims):
        body.append(f"CLP*{claim.claim_id}*{claim.status}*{claim.billed}*{claim.paid}**12*"
                    f"94060555{number:03d}{index:05d}")
        body += [f"CAS*{g}*{c}*{a}" for g, c, a in claim.cas]
        body.append("NM1*QC*1*DOE*JANE****MI*33344555510")
        for svc in claim.services:
            code = ":".join(("HC", svc.code, *svc.modifiers))
            body.append(f"SVC*{code}*{svc.billed}*{svc.paid}**{svc.units}")
            body.append(f"DTM*472*{svc.day}")
            body += [f"CAS*{g}*{c}*{a}" for g, c, a in svc.cas]
            if svc.line_ref:
                body.append(f"REF*6R*{svc.line_ref}")
            body += [f"LQ*HE*{r}" for r in svc.remarks]
    control = f"{number:04d}"
    segments = [f"ST*835*{control}", *body]
    segments.append(f"SE*{len(segments) + 1 + se_delta}*{control}")
    return segments


def write_835(remits: Sequence[Remit], *, control: str = "000000907", se_delta: int = 0,
              ) -> bytes:
    transactions = [s for n, remit in enumerate(remits, start=1)
                    for s in _transaction(n, remit, se_delta)]
    envelope = [
        f"ISA*00*          *00*          *ZZ*PAYERID        *ZZ*ACMEABA        *240120*1200*^*"
        f"00501*{control}*0*P*:",
        "GS*HP*PAYERID*ACMEABA*20240120*1200*1*X*005010X221A1",
        *transactions,
        f"GE*{len(remits)}*1",
        f"IEA*1*{control}",
    ]
    return ("~\n".join(envelope) + "~\n").encode()


def build_835(claims: list[Clp], *, payer: str = "UNITEDHEALTHCARE", paid_on: str = "20240120",
              se_delta: int = 0, control: str = "000000907") -> bytes:
    """One payer, one payment date."""
    return write_835([Remit(payer, paid_on, claims)], control=control, se_delta=se_delta)
