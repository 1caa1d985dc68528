"""The cross-practice network, the one place outside `customers/` (DESIGN "Firestore": the
network detector reads only anonymised per-payer data). Layout:
`network_payers/{payer token}/signals/{tenant token}_{day}` and `…/changes/{day}`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from google.cloud import firestore

from upstream.domain.detect.network import payer_token

NETWORK = "network_payers"


class FirestoreNetwork:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _payer(self, payer: str) -> firestore.DocumentReference:
        return self._client.collection(NETWORK).document(payer_token(payer))

    def signal(self, payer: str, tenant: str, day: date) -> None:
        self._payer(payer).collection("signals").document(f"{tenant}_{day}").set(
            {"payer": payer, "tenant": tenant, "day": day.isoformat()})

    def signals(self, payer: str, since: date) -> list[dict[str, Any]]:
        query = self._payer(payer).collection("signals").where(
            filter=firestore.FieldFilter("day", ">=", since.isoformat()))
        return [snap.to_dict() or {} for snap in query.stream()]

    def record_change(self, payer: str, day: date, practices: int) -> None:
        self._payer(payer).collection("changes").document(day.isoformat()).set(
            {"payer": payer, "day": day.isoformat(), "practices": practices}, merge=True)

    def changes(self, payers: Iterable[str], since: date) -> list[dict[str, Any]]:
        found = []
        for payer in payers:
            query = self._payer(payer).collection("changes").where(
                filter=firestore.FieldFilter("day", ">=", since.isoformat()))
            found += [snap.to_dict() or {} for snap in query.stream()]
        return found
