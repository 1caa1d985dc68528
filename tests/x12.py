"""Builds small, envelope-correct X12 835s for tests (our own; third-party 835s live in
../shared/data/x12-835 and are read as they are)."""

from __future__ import annotations

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
    status: str
    billed: str
    paid: str
    services: list[Svc] = field(default_factory=list)
    cas: tuple[tuple[str, str, str], ...] = ()


def build_835(claims: list[Clp], *, payer: str = "UNITEDHEALTHCARE", paid_on: str = "20240120",
              se_delta: int = 0, control: str = "000000907") -> bytes:
    body = [
        "BPR*I*100.00*C*ACH*CCP*01*888999777*DA*24681012*1935665544**01*111333555*DA*144444*"
        + paid_on,
        "TRN*1*7170066655*1935665544",
        "DTM*405*" + paid_on,
        f"N1*PR*{payer}",
        "N3*10 SOUTH AVENUE",
        "N4*RAPID CITY*SD*55111",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        "N1*PE*ACME ABA*XX*5544667733",
        "LX*1",
    ]
    for claim in claims:
        body.append(f"CLP*{claim.claim_id}*{claim.status}*{claim.billed}*{claim.paid}**12*"
                    f"9406055541{len(body):04d}")
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
    segments = ["ST*835*0001", *body]
    segments.append(f"SE*{len(segments) + 1 + se_delta}*0001")
    envelope = [
        f"ISA*00*          *00*          *ZZ*PAYERID        *ZZ*ACMEABA        *240120*1200*^*"
        f"00501*{control}*0*P*:",
        "GS*HP*PAYERID*ACMEABA*20240120*1200*1*X*005010X221A1",
        *segments,
        "GE*1*1",
        f"IEA*1*{control}",
    ]
    return ("~\n".join(envelope) + "~\n").encode()
