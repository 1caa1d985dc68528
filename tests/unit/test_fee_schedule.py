"""The practice's fee schedule: read from CSV (settings form, CLI), kept in settings, and
every contracted payer × code compared with what the payer allowed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.claim_streams import START, Behaviour, documents
from upstream.cli import main
from upstream.domain.aggregates import build_frame, cells_from_documents
from upstream.domain.detect.underpay import contract_findings
from upstream.domain.practice.fee_schedule import (
    FeeScheduleError,
    canonical_rows,
    parse_fee_schedule,
)
from upstream.domain.practice.settings_forms import FormError, fee_schedule_text, practice
from upstream.services.api_requests import SettingsBody

# claim_streams: 97153 allowed at 30.00 × 0.72 = 21.60 a unit (plans 0.95–1.05 around it)
RATE_97153 = 2160


def test_a_schedule_reads_like_the_spreadsheet_it_came_from() -> None:
    rows = parse_fee_schedule('\ufeffPayer,CPT,Rate\nAetna,97153,$21.60\nUHC,97155.0,"1,234.5"\n'
                              "\n")
    assert rows == [{"payer": "Aetna", "cpt": "97153", "cents_per_unit": 2160},
                    {"payer": "UHC", "cpt": "97155", "cents_per_unit": 123450}]
    assert canonical_rows(rows)[1]["payer"] == "UnitedHealthcare"
    assert canonical_rows(rows, {"UHC": "Our UHC"})[1]["payer"] == "Our UHC"


@pytest.mark.parametrize("text, where", [
    ("", "line 1"), ("payer,code,price\n", "line 1"), ("payer,cpt,rate\nAetna,97153\n", "line 2"),
    ("payer,cpt,rate\nAetna,9715,1\n", "line 2"), ("payer,cpt,rate\nAetna,97153,free\n", "line 2"),
    ("payer,cpt,rate\nAetna,97153,-1\n", "line 2"), ("payer,cpt,rate\nAetna,97153,NaN\n", "line 2"),
    ("payer,cpt,rate\n=cmd(),97153,1\n", "line 2"), ("payer,cpt,rate\n,97153,1\n", "line 2"),
    ("payer,cpt,rate\n" + "Aetna,97153,1\n" * 2001, "more than")])
def test_a_bad_schedule_is_refused_with_its_line(text: str, where: str) -> None:
    with pytest.raises(FeeScheduleError, match=where):
        parse_fee_schedule(text)


def test_the_settings_form_and_the_api_agree() -> None:
    body = practice({"fee_schedule": "payer,cpt,rate\nAetna,97153,21.60\n"})
    assert SettingsBody.model_validate(body).fee_schedule is not None
    assert fee_schedule_text(body["fee_schedule"]) == "payer,cpt,rate\nAetna,97153,21.60"
    assert practice({"fee_schedule": ""})["fee_schedule"] == []
    with pytest.raises(FormError) as caught:
        practice({"fee_schedule": "payer,cpt,rate\nAetna,97153,x\n"})
    assert caught.value.field == "fee_schedule"
    with pytest.raises(ValueError):
        SettingsBody.model_validate({"fee_schedule": [{"payer": "A", "cpt": "bad",
                                                       "cents_per_unit": 1}]})


def frame_of(*behaviours: Behaviour, days: int = 120) -> tuple[object, object]:
    docs = [d for b in behaviours for d in documents(b, days)]
    run_day = START + timedelta(days=days)
    return build_frame(cells_from_documents(docs), end=run_day), run_day


def test_a_payer_allowing_less_than_its_contract_is_found() -> None:
    frame, run_day = frame_of(Behaviour("Aetna", price=0.85), Behaviour("Cigna"))
    rows = [{"payer": "Aetna", "cpt": "97153", "cents_per_unit": RATE_97153},
            {"payer": "Cigna", "cpt": "97153", "cents_per_unit": round(RATE_97153 * 0.94)}]
    found = contract_findings(frame, run_day, rows)  # type: ignore[arg-type]
    assert [(f.payer, f.scope, f.method) for f in found] == [
        ("Aetna", "cpt:97153", "contract_binomial_bh")]
    assert 0.1 < found[0].metrics["cut"] < 0.2 and "in your contract" in found[0].title


def test_paid_at_contract_or_unknown_payers_or_thin_codes_raise_nothing() -> None:
    docs = [d for b in (Behaviour("Aetna"), Behaviour("Tiny", price=0.5))
            for d in documents(b, 120) if d["payer"] == "Aetna" or d["cpt"] == "97530"]
    tiny = [d for d in docs if d["payer"] == "Tiny"][-5:]  # five lines of its code: too few
    run_day = START + timedelta(days=120)
    frame = build_frame(cells_from_documents(
        [d for d in docs if d["payer"] == "Aetna"] + tiny), end=run_day)
    rows = [{"payer": "Aetna", "cpt": "97153", "cents_per_unit": round(RATE_97153 * 0.95)},
            {"payer": "Nobody", "cpt": "97153", "cents_per_unit": 99999},
            {"payer": "Tiny", "cpt": "97530", "cents_per_unit": 99999},
            {"payer": "Aetna", "cpt": "97153", "cents_per_unit": 0}]
    assert contract_findings(frame, run_day, rows) == []  # type: ignore[arg-type]
    assert contract_findings(frame, run_day, None) == []  # type: ignore[arg-type]


def test_upstream_analyze_with_a_fee_schedule(tmp_path: Path) -> None:
    from tests.unit.test_payer_behavior import write_csv

    claims, fees = tmp_path / "claims.csv", tmp_path / "fees.csv"
    write_csv(claims, Behaviour("Aetna", price=0.8), Behaviour("Cigna"), Behaviour("Humana"))
    fees.write_text("payer,cpt,rate\nAetna,97153,21.60\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["analyze", str(claims), "--fee-schedule", str(fees)])
    assert result.exit_code == 0, result.output
    assert any("contract_binomial_bh" in a["methods"] for a in json.loads(result.output))
    fees.write_text("payer,cpt,rate\nAetna,97153,lots\n", encoding="utf-8")
    bad = CliRunner().invoke(main, ["analyze", str(claims), "--fee-schedule", str(fees)])
    assert bad.exit_code != 0 and "line 2" in bad.output
