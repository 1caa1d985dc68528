"""Payer fingerprints and archetypes, on streams whose payers' behaviour is known."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.claim_streams import START, Behaviour, documents
from upstream.cli import main
from upstream.domain.aggregates import build_frame, cells_from_documents
from upstream.domain.payer_behavior import archetypes
from upstream.domain.payer_behavior.archetypes import (
    AGGRESSIVE_DENIER,
    PROMPT_PAYER,
    SLOW_PAYER,
    TYPICAL,
    UNDERPAYER,
    assign,
    name,
    silhouette,
)
from upstream.domain.payer_behavior.fingerprint import fingerprints
from upstream.domain.payer_behavior.report import payer_report

DAYS = 365
AS_OF = START + timedelta(days=DAYS)


def report(*behaviours: Behaviour) -> dict[str, dict[str, Any]]:
    docs = [d for b in behaviours for d in documents(b, DAYS)]
    frame = build_frame(cells_from_documents(docs), end=AS_OF)
    return {entry["payer"]: entry for entry in payer_report(frame, AS_OF)}


TYPICALS = [Behaviour(f"Typical {i}", denial_rate=0.07 + 0.01 * i, lag_days=14 + i,
                      price=0.97 + 0.02 * i) for i in range(4)]


def test_a_stream_with_one_payer_of_each_archetype_names_each() -> None:
    got = report(*TYPICALS,
                 Behaviour("Denier", denial_rate=0.25),
                 Behaviour("Slowcoach", lag_days=38),
                 Behaviour("Quick", lag_days=5),
                 Behaviour("Cheap", price=0.7))
    names = {payer: entry["archetype"] for payer, entry in got.items()}
    assert names["Denier"] == AGGRESSIVE_DENIER
    assert names["Slowcoach"] == SLOW_PAYER
    assert names["Quick"] == PROMPT_PAYER
    assert names["Cheap"] == UNDERPAYER
    assert all(names[f"Typical {i}"] == TYPICAL for i in range(4)), names


def test_a_payer_that_starts_denying_or_slowing_is_named_for_the_change() -> None:
    got = report(*TYPICALS,
                 Behaviour("Turning", denial_rate=0.08, denial_after=0.2, change_day=300),
                 Behaviour("Slowing", lag_days=15, lag_after=27, change_day=300))
    assert got["Turning"]["archetype"] == AGGRESSIVE_DENIER
    assert got["Slowing"]["archetype"] == SLOW_PAYER
    turning = got["Turning"]["fingerprint"]
    assert turning["denial_trend_p_value"] < 0.01 and turning["denial_trend_log_odds"] > 0.5
    assert got["Slowing"]["fingerprint"]["payment_trend_ks_p_value"] < 0.01


def test_payers_alike_are_all_typical() -> None:
    same = [Behaviour(f"Same {i}") for i in range(6)]
    assert {e["archetype"] for e in report(*same).values()} == {TYPICAL}


def test_a_payer_with_too_few_lines_is_typical_and_says_why() -> None:
    got = report(*TYPICALS, Behaviour("Rare", per_day=0))
    assert "Rare" not in got  # no decided lines at all: not a payer of this period
    sparse = Behaviour("Sparse", per_day=1, denial_rate=0.9)
    docs = [d for b in (*TYPICALS, sparse) for d in documents(b, DAYS)
            if d["payer"] != "Sparse" or int(d["doc"].split("-")[1]) % 10 == 0]
    frame = build_frame(cells_from_documents(docs), end=AS_OF)
    entries = {e["payer"]: e for e in payer_report(frame, AS_OF)}
    assert entries["Sparse"]["archetype"] == TYPICAL
    assert "fewer than 30" in entries["Sparse"]["evidence"]["note"]


def test_one_or_two_payers_have_no_norm_to_stand_out_from() -> None:
    got = report(Behaviour("Only"))
    assert got["Only"]["archetype"] == TYPICAL
    assert "fewer than 3 payers" in got["Only"]["evidence"]["note"]
    got = report(Behaviour("A"), Behaviour("B", lag_days=40))
    assert {e["archetype"] for e in got.values()} == {TYPICAL}
    got = report(Behaviour("A"), Behaviour("B"), Behaviour("C", lag_days=40))
    assert got["C"]["archetype"] == SLOW_PAYER
    assert "own fingerprint" in got["C"]["evidence"]["note"]


def test_the_report_has_the_contract_shape_and_evidence_in_words() -> None:
    got = report(*TYPICALS, Behaviour("Denier", denial_rate=0.25))
    entry = got["Denier"]
    assert set(entry) == {"payer", "payer_id", "archetype", "fingerprint", "evidence"}
    assert set(entry["fingerprint"]) >= {"denial_rate", "denial_trend_log_odds",
                                         "days_to_payment", "payment_trend_days",
                                         "price_index", "price_trend", "carc_mix_shift",
                                         "appeal_overturn_rate"}
    assert entry["evidence"]["because"][0].startswith("Denies 2")
    assert entry["evidence"]["top_denial_reasons"][0]["code"] in ("CO-197", "CO-16")
    assert 0 <= entry["evidence"]["stability"] <= 1
    json.dumps(got)  # everything serialises


def test_the_fingerprint_reads_the_aggregates_only() -> None:
    docs = [d for b in TYPICALS for d in documents(b, DAYS)]
    frame = build_frame(cells_from_documents(docs), end=AS_OF)
    prints = {fp.payer: fp for fp in fingerprints(frame, AS_OF)}
    assert prints["Typical 0"].price_index == pytest.approx(0.97 / 1.0, abs=0.04)
    assert prints["Typical 3"].days_to_payment == pytest.approx(17, abs=1)
    assert prints["Typical 0"].appeal_overturn_rate is None
    assert prints["Typical 0"].carc_mix_shift is not None
    assert prints["Typical 0"].carc_mix_shift < 0.3


def test_an_empty_frame_has_no_payers() -> None:
    assert payer_report(build_frame([]), date(2025, 1, 1)) == []
    assert assign([]) == []


def test_the_naming_rule() -> None:
    assert name([0, 0, 0, 0, 0, 0]) == TYPICAL
    assert name([1.5, 0, 0, 0, 0, 0]) == AGGRESSIVE_DENIER
    assert name([0, 0, 0, 2, 0, 0]) == SLOW_PAYER
    assert name([0, 0, 0, 0, -1.2, 0]) == UNDERPAYER
    assert name([0, 0, -1.5, 0, 0, 0]) == PROMPT_PAYER
    assert name([1.2, 0, -1.5, 0, 0, 0]) == AGGRESSIVE_DENIER  # fast denials are no credit
    assert name([1.2, 0, 0, 3, 0, 0]) == SLOW_PAYER  # the larger problem names


def test_silhouette_of_two_clear_groups_is_high() -> None:
    points = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5]])
    assert silhouette(points, np.array([0, 0, 1, 1])) > 0.9
    assert silhouette(points, np.array([0, 0, 0, 0])) == 0.0


def test_clusters_are_stable_under_resampling_for_a_clear_outlier() -> None:
    got = report(*TYPICALS, Behaviour("Denier", denial_rate=0.3))
    assert got["Denier"]["evidence"]["stability"] >= archetypes.STABLE


# --- the command ---------------------------------------------------------------------------------

def write_csv(path: Path, *behaviours: Behaviour) -> None:
    rows = ["Claim ID,Line,Patient ID,Payer,CPT,Units,DOS,Submitted,Paid Date,Status,Billed,"
            "Allowed,Paid,CARC"]
    for b in behaviours:
        for i, d in enumerate(documents(b, DAYS)):
            rows.append(",".join([f"C{b.payer[:3]}{i}", "1", f"P{i % 40}", b.payer, d["cpt"],
                                  str(d["units"]), d["submitted_date"], d["submitted_date"],
                                  d["decided_date"], d["outcome"].lower(),
                                  f"{d['billed_cents'] / 100:.2f}",
                                  f"{d['allowed_cents'] / 100:.2f}",
                                  f"{d['paid_cents'] / 100:.2f}", d["carc_codes"][0]]))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_upstream_payers_names_archetypes_from_a_csv(tmp_path: Path) -> None:
    claims = tmp_path / "claims.csv"
    write_csv(claims, *TYPICALS[:3], Behaviour("Denier", denial_rate=0.28),
              Behaviour("Slowcoach", lag_days=40))
    result = CliRunner().invoke(main, ["payers", str(claims), "--format", "json"])
    assert result.exit_code == 0, result.output
    names = {e["payer"]: e["archetype"] for e in json.loads(result.output)}
    assert names["Denier"] == AGGRESSIVE_DENIER and names["Slowcoach"] == SLOW_PAYER
    table = CliRunner().invoke(main, ["payers", str(claims), "--as-of", "2025-12-01"])
    assert table.exit_code == 0 and "Denier: Aggressive Denier" in table.output


def test_upstream_payers_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["payers", str(empty)])
    assert result.exit_code != 0
    assert CliRunner().invoke(main, ["payers"]).exit_code != 0
    assert CliRunner().invoke(main, ["payers", str(tmp_path / "missing.csv")]).exit_code != 0
