"""Authorization requests and their answers: read from exports, learned from, predicted."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from upstream.cli import main
from upstream.domain.detect.authcal import calendar
from upstream.domain.records import RecordKind
from upstream.domain.sample import export_authorizations, generate
from upstream.domain.specialty.auth_approval import Request, decided_requests, fit
from upstream.domain.values import InvalidValue, parse_decision
from upstream.offline import offline_context, read_file


@pytest.mark.parametrize("cell, decision", [
    ("Approved", "approved"), ("APPROVED IN FULL", "approved"), ("Certified", "approved"),
    ("Partially approved", "partial"), ("modified", "partial"), ("Denied", "denied"),
    ("Not certified", "denied"), ("Non-certified", "denied"), ("in review", "pending"),
    ("", None), (None, None)])
def test_decisions_in_the_words_exports_use(cell: str | None, decision: str | None) -> None:
    assert parse_decision(cell) == decision


@pytest.mark.parametrize("cell", ["maybe", "=HYPERLINK()", "approved?!x", "42"])
def test_other_decisions_are_refused(cell: str) -> None:
    with pytest.raises(InvalidValue):
        parse_decision(cell)


HEADER = ("Auth Number,Patient ID,Payer,Start Date,End Date,Units Authorized,Units Requested,"
          "Decision,Decision Date\n")


def read(rows: str) -> tuple[list[dict[str, object]], dict[str, int]]:
    import io

    rejects = io.StringIO()
    report, records = read_file(io.BytesIO((HEADER + rows).encode()),
                                RecordKind.AUTHORIZATIONS, offline_context(), rejects)
    return [r.to_document() for r in records], report.summary()["reasons"]


def test_an_export_with_requests_and_answers_is_read_and_bad_rows_refused() -> None:
    docs, reasons = read(
        "A1,P1,Aetna,01/01/2025,06/30/2025,400,480,Partially approved,12/20/2024\n"
        "A2,P2,Aetna,01/01/2025,06/30/2025,0,480,Denied,12/21/2024\n"
        "A3,P3,Aetna,01/01/2025,06/30/2025,400,-5,Approved,12/21/2024\n"
        "A4,P4,Aetna,01/01/2025,06/30/2025,400,480,Sort of,12/21/2024\n"
        "A5,P5,Aetna,01/01/2025,06/30/2025,400,480,Approved,not a date\n")
    assert [(d["decision"], d["units_requested"]) for d in docs] == [("partial", 480.0),
                                                                     ("denied", 480.0)]
    assert docs[0]["decision_date"] == "2024-12-20"
    assert reasons == {"invalid_units": 1, "invalid_decision": 1, "invalid_date": 1}


def test_a_denied_request_has_no_calendar() -> None:
    docs, _ = read("A2,P2,Aetna,01/01/2025,06/30/2025,0,480,Denied,12/21/2024\n")
    assert calendar(docs, [], date(2025, 6, 20)) == []


@pytest.fixture(scope="module")
def sample_auths() -> list[dict[str, object]]:
    data = generate(date(2025, 1, 1), date(2025, 12, 31), lines_per_day=20, seed=7)
    import io

    _, records = read_file(io.BytesIO(export_authorizations(data.authorizations)),
                           RecordKind.AUTHORIZATIONS, offline_context())
    return [r.to_document() for r in records]


def test_the_model_finds_the_sample_payers_rules(sample_auths: list[dict[str, object]]) -> None:
    decided = decided_requests(sample_auths)
    assert len(decided) > 400 and sum(not d.approved for d in decided) >= 20
    assert any(d.request.renewal for d in decided) and not all(d.request.renewal
                                                               for d in decided)
    model = fit(decided)
    assert model is not None
    weights = dict(zip(model.terms, model.approval, strict=True))
    assert weights["renewal"] > 0.3  # renewals are approved more often (the sample's rule)
    assert weights["log_units_per_month"] < -0.1  # intensive requests less often
    ev = model.evaluation
    assert ev["approval_auc"] is not None and ev["approval_auc"] > 0.55
    assert ev["holdout_requests"] >= len(decided) // 4
    first = model.predict(Request("Medicaid", 720, 6, False))
    renewal = model.predict(Request("Medicaid", 360, 6, True))
    assert renewal["approval_probability"] > first["approval_probability"]
    assert 0 < first["expected_units_if_approved"] <= 720 and first["reasons"]


def test_thin_or_undecided_history_gives_no_model() -> None:
    assert fit([]) is None
    assert decided_requests([{"decision": "pending", "units_requested": 10,
                              "decision_date": "2025-01-01", "start_date": "2025-01-01",
                              "end_date": "2025-06-01"},
                             {"decision": "approved", "units_requested": None}]) == []


def test_upstream_approvals(tmp_path: Path) -> None:
    data = generate(date(2025, 1, 1), date(2025, 12, 31), lines_per_day=10, seed=7)
    auths = tmp_path / "auths.csv"
    auths.write_bytes(export_authorizations(data.authorizations))
    result = CliRunner().invoke(main, ["approvals", str(auths), "--request",
                                       "payer=Aetna,units=480,months=6,renewal=yes",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert 0 < answer["prediction"]["approval_probability"] <= 1
    bad = CliRunner().invoke(main, ["approvals", str(auths), "--request", "units=lots"])
    assert bad.exit_code != 0 and "payer=NAME" in bad.output
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER, encoding="utf-8")
    thin = CliRunner().invoke(main, ["approvals", str(empty)])
    assert thin.exit_code != 0


def test_the_dashboard_calendar_shows_grants_not_requests_nor_old_history() -> None:
    from upstream.domain.dashboard import auth_calendar

    auths = [
        {"authorization_number": "NOW", "patient_key": "p", "payer": "Aetna",
         "start_date": "2025-06-01", "end_date": "2025-12-31", "decision": "approved"},
        {"authorization_number": "NOW-D0", "patient_key": "p", "payer": "Aetna",
         "start_date": "2025-06-01", "end_date": "2025-12-31", "decision": "denied"},
        {"authorization_number": "OLD-R1", "patient_key": "p", "payer": "Aetna",
         "start_date": "2024-12-01", "end_date": "2025-05-31", "decision": "approved"},
        {"authorization_number": "OLD-R2", "patient_key": "p", "payer": "Aetna",
         "start_date": "2023-12-01", "end_date": "2024-11-30", "decision": "approved"}]
    shown = {row.authorization_number for group in auth_calendar(auths, date(2025, 12, 20))
             for row in group.rows}
    assert shown == {"NOW"}  # the denied request and the long-renewed history are not rows
