"""A practice's history from many local files, for `upstream analyze` and `backtest`.

Practices export a file a month, and not always from one system: a folder may hold claims CSVs
of different layouts, an authorizations export and 835 remittances. The same domain code the
functions run reads each one; what joins them is what the stored documents would be:

- a claim line is its document id (claim id and line), so a line exported again next month
  replaces the earlier version (files are read in the order given, a folder's in name order,
  which is month order for the usual `claims-2025-01.csv` names);
- 835 files are posted after every CSV, in order, against the lines read so far, exactly as
  the `file_ingest` function posts them against Firestore.

A file that cannot be read at all stops the command with its name and why: a year's analysis
quietly missing a month would be wrong advice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upstream.domain.ingest import TenantContext
from upstream.domain.records import Authorization, ClaimLine
from upstream.domain.remit_match import plan_posting
from upstream.domain.remittance import RemittanceUnreadable, looks_like_x12, read_835
from upstream.domain.table import UnreadableFile
from upstream.offline import read_file

# What an export folder holds besides data: a README, a spreadsheet's lock file, an OS index.
DATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".835", ".edi", ".x12", ".era"})


class HistoryError(ValueError):
    """One named file could not be used; the message says which and why."""


@dataclass(slots=True)
class History:
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # doc id → document
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)  # one summary per file read

    def claim_documents(self) -> list[dict[str, Any]]:
        return list(self.claims.values())

    def authorization_documents(self) -> list[dict[str, Any]]:
        return list(self.authorizations.values())


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a folder's data files (recursively, hidden ones skipped) in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file()
                            and p.suffix.lower() in DATA_SUFFIXES
                            and not any(part.startswith(".") for part in
                                        p.relative_to(path).parts))
        else:
            found.append(path)
    if not found:
        raise HistoryError("no data files (.csv, .tsv, .txt, .835) in what was given")
    return found


def load_history(paths: Iterable[Path], ctx: TenantContext) -> History:
    """Every file under `paths`, joined as the stored documents would be."""
    history = History()
    remittances: list[Path] = []
    for path in expand(paths):
        with path.open("rb") as stream:
            if looks_like_x12(stream.read(512)):
                remittances.append(path)
                continue
            stream.seek(0)
            try:
                report, records = read_file(stream, None, ctx)
                kinds: dict[str, int] = defaultdict(int)
                for record in records:
                    target = history.claims if isinstance(record, ClaimLine) \
                        else history.authorizations
                    target[record.doc_id] = record.to_document()
                    kinds[_kind(record)] += 1
            except UnreadableFile as exc:
                raise HistoryError(f"{path}: {exc}") from exc
        history.files.append({"file": str(path), "rows": report.rows, **kinds,
                              "rejected": report.rejected})
    for path in remittances:
        _post(history, path)
    return history


def _kind(record: ClaimLine | Authorization) -> str:
    return "claim_lines" if isinstance(record, ClaimLine) else "authorizations"


def _post(history: History, path: Path) -> None:
    try:
        remittance = read_835(path.read_bytes())
    except RemittanceUnreadable as exc:
        raise HistoryError(f"{path}: {exc}") from exc
    by_claim: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for doc_id, document in history.claims.items():
        by_claim[str(document["claim_id"])].append((doc_id, document))
    posting = plan_posting(remittance, by_claim)
    for doc_id, fields in posting.changes.items():
        history.claims[doc_id] = {**history.claims[doc_id], **fields}
    history.files.append({"file": str(path), "posted_lines": len(posting.changes),
                          "rejected": len(posting.rejected)})
