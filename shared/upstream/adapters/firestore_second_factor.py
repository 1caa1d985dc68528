"""Each person's second-factor state in `customers/{id}/second_factors/{uid}`: the nonces
their authenticator's secret is derived from (never the secret), the last time step used,
and recent failures. Every change is a transaction, so two codes racing for one step, or
two wrong codes racing past the failure limit, are decided once."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.practice.second_factor import FactorState

COLLECTION = "second_factors"


class FirestoreSecondFactors:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _ref(self, customer_id: str, uid: str) -> firestore.DocumentReference:
        if not uid or "/" in uid or uid.startswith("__"):
            raise ValueError("not an Identity Platform uid")
        return tenant_collection(self._client, customer_id, COLLECTION).document(uid)

    def state(self, customer_id: str, uid: str) -> FactorState:
        snap = self._ref(customer_id, uid).get()
        return FactorState.of(snap.to_dict() if snap.exists else None)

    def change(self, customer_id: str, uid: str,
               step: Callable[[FactorState], FactorState | None]) -> FactorState | None:
        """Apply `step` to the stored state atomically; None from it changes nothing (and is
        what this returns)."""
        ref = self._ref(customer_id, uid)

        @firestore.transactional
        def apply(transaction: firestore.Transaction) -> FactorState | None:
            snap = ref.get(transaction=transaction)
            changed = step(FactorState.of(snap.to_dict() if snap.exists else None))
            if changed is not None:
                transaction.set(ref, changed.to_doc())
            return changed

        return apply(self._client.transaction())  # type: ignore[no-any-return]

    def reset(self, customer_id: str, uid: str) -> None:
        self._ref(customer_id, uid).delete()
