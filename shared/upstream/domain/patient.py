"""Patient identifiers become `patient_key` before anything is stored or logged.

HMAC-SHA256 with a per-tenant secret key: a plain hash of an MRN is reversible by trying
every MRN, and a shared key would let one tenant's keys be matched against another's.
"""

from __future__ import annotations

import hashlib
import hmac
import re

MIN_KEY_BYTES = 32  # a full SHA-256 block of entropy; shorter keys weaken the HMAC


def canonical_patient_id(raw: str) -> str:
    """The same patient must hash the same in every export: case and spacing are ignored,
    and purely numeric ids lose the `.0` and leading zeros that spreadsheets add or drop."""
    text = re.sub(r"\s+", "", raw).upper()
    if re.fullmatch(r"\d+(\.0+)?", text):
        text = text.split(".")[0].lstrip("0") or "0"
    return text


class PatientHasher:
    def __init__(self, tenant_key: bytes) -> None:
        if len(tenant_key) < MIN_KEY_BYTES:
            raise ValueError(f"patient-hash key must be at least {MIN_KEY_BYTES} bytes")
        self._key = tenant_key

    def __call__(self, raw_patient_id: str) -> str:
        digest = hmac.new(self._key, canonical_patient_id(raw_patient_id).encode(), hashlib.sha256)
        return digest.hexdigest()

    def __repr__(self) -> str:  # never print the key
        return "PatientHasher(<secret>)"
