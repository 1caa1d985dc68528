"""`upstream analyze` and `upstream backtest` offline (Contract 5)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from upstream.cli import main
from upstream.domain.sample import Shift, export_claims, generate


@pytest.fixture(scope="module")
def drifting_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(date(2025, 3, 1), date(2025, 9, 30), lines_per_day=50, seed=5,
                    shifts=[Shift("Aetna", date(2025, 7, 15), denial_factor=3.0)])
    path = tmp_path_factory.mktemp("cli") / "claims.csv"
    path.write_bytes(export_claims(data.claims, "athena", seed=5))
    return path


def test_analyze_prints_contract_4_alerts(drifting_csv: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(drifting_csv)])
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.output)
    drift = [a for a in alerts if a["type"] == "denial_rate_drift"]
    assert drift and all(a["payer"] == "Aetna" for a in drift)
    for key in ("alert_id", "customer_id", "severity", "title", "summary", "metrics",
                "evidence", "recommended_actions", "window", "created_at", "status"):
        assert key in drift[0]
    assert drift[0]["created_at"] == "2025-10-01"  # the day after the file's last date


def test_analyze_before_the_change_is_quiet(drifting_csv: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(drifting_csv), "--as-of", "2025-07-01",
                                       "--format", "table"])
    assert result.exit_code == 0 and result.output.strip() == "no alerts"


def test_backtest_raises_the_drift_after_the_change_only(drifting_csv: Path) -> None:
    result = CliRunner().invoke(main, ["backtest", str(drifting_csv), "--from", "2025-06-01",
                                       "--to", "2025-09-30"])
    assert result.exit_code == 0, result.output
    drift = [a for a in json.loads(result.output) if a["type"] == "denial_rate_drift"]
    assert drift and all(a["payer"] == "Aetna" and a["created_at"] > "2025-07-15"
                         for a in drift)


def test_backtest_refuses_a_reversed_range(drifting_csv: Path) -> None:
    result = CliRunner().invoke(main, ["backtest", str(drifting_csv), "--from", "2025-06-01",
                                       "--to", "2025-05-01"])
    assert result.exit_code != 0 and "before --from" in result.output


def test_analyze_of_an_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = CliRunner().invoke(main, ["analyze", str(empty)])
    assert result.exit_code != 0 and "empty.csv" in result.output


def test_analyze_of_only_pending_lines_has_no_alerts(tmp_path: Path) -> None:
    path = tmp_path / "pending.csv"
    path.write_text("Claim ID,Payer,CPT,DOS,Billed,Status\n"
                    + "".join(f"C{i},Aetna,97153,2025-03-{i % 28 + 1:02d},100,Pending\n"
                              for i in range(60)))
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "table"])
    assert result.exit_code == 0 and result.output.strip() == "no alerts"


def test_map_fhir_prints_records_and_a_report(tmp_path: Path) -> None:
    from tests.unit.test_fhir_map import eob

    path = tmp_path / "eobs.ndjson"
    path.write_text(json.dumps(eob()) + "\n{broken\n")
    result = CliRunner().invoke(main, ["map-fhir", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["record_type"] for r in rows] == ["claim_line", "claim_line"]
    report = json.loads(result.stderr.splitlines()[-1])
    assert report["lines"] == 2 and report["issues"] == {"not_json": 1}


def test_map_fhir_of_a_binary_file_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(main, ["map-fhir", str(path)])
    assert result.exit_code == 0 and result.exception is None
    assert json.loads(result.stderr.splitlines()[-1])["issues"] == {"not_utf8": 1}


def test_map_fhir_reports_each_hostile_line_and_maps_the_rest(tmp_path: Path) -> None:
    """Deep nesting, a 100,000-digit number, a non-UTF-8 line and a huge id: each is one
    issue in the report, no traceback, and the good line still maps."""
    from tests.unit.test_fhir_map import eob

    huge_id = dict(eob(), id="x" * 2_000_000)
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join([
        json.dumps(eob()).encode(),
        b'{"resourceType": "Claim", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"resourceType": "Claim", "total": ' + b"9" * 100_000 + b"}",
        b'{"resourceType": "Claim", "id": "caf\xe9"}',
        json.dumps(huge_id).encode()]))
    result = CliRunner().invoke(main, ["map-fhir", str(path)])
    assert result.exit_code == 0 and result.exception is None, result.output
    report = json.loads(result.stderr.splitlines()[-1])
    assert report["issues"].get("too_deep") == 1 and report["issues"].get("not_utf8") == 1
    assert report["issues"].get("number_too_long") == 1
    assert len(result.stderr) < 20_000  # the 2 MB id is not echoed
    for example in report["examples"]:
        assert len(str(example["resource_id"])) <= 201
    assert report["lines"] >= 2


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"claim_id": ' + b"1" * 100_000 + b"}",
                                  b'{"claim_id": "\\ud800"}', b"\x81\x8d"])
def test_score_reports_hostile_json_in_one_line(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "claim.json"
    path.write_bytes(body)
    result = CliRunner().invoke(main, ["score", str(path)])
    assert result.exit_code == 1 and not isinstance(result.exception, RecursionError)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "not a JSON object we accept" in result.output


@pytest.fixture(scope="module")
def monthly_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drifting year as a practice exports it: a file a month, three EHR layouts, the last
    month's decisions only in an 835, and files the command must skip."""
    from upstream.domain.sample import _undecided, remittance_file

    data = generate(date(2025, 3, 1), date(2025, 9, 30), lines_per_day=50, seed=5,
                    shifts=[Shift("Aetna", date(2025, 7, 15), denial_factor=3.0)])
    folder = tmp_path_factory.mktemp("monthly")
    styles = ["athena", "pm_semicolon", "spreadsheet_tab"]
    for month in range(3, 10):
        lines = [r for r in data.claims if r["service_date"].month == month]
        if month == 9:
            (folder / "remit-2025-09.835").write_bytes(remittance_file(
                [r for r in lines if r["outcome"] != "PENDING" and r["decided_date"]]))
            lines = [_undecided(r) for r in lines]
        style = styles[month % 3]
        (folder / f"claims-2025-{month:02d}.csv").write_bytes(
            export_claims(lines, style, seed=month, broken_share=0, duplicate_share=0))
    (folder / "README.md").write_text("exported by the front desk")
    (folder / ".~lock.claims-2025-09.csv#").write_text("libreoffice lock")
    return folder


def test_analyze_of_a_folder_of_monthly_exports_in_mixed_layouts_finds_the_drift(
        monthly_folder: Path) -> None:
    from upstream.offline import offline_context
    from upstream.offline_history import load_history

    history = load_history([monthly_folder], offline_context())
    read = {Path(f["file"]).name: f for f in history.files}
    assert sorted(read) == [f"claims-2025-{m:02d}.csv" for m in range(3, 10)] + [
        "remit-2025-09.835"]
    assert read["remit-2025-09.835"]["posted_lines"] > 100
    assert read["remit-2025-09.835"]["rejected"] == 0
    result = CliRunner().invoke(main, ["analyze", str(monthly_folder)])
    assert result.exit_code == 0, result.output
    drift = [a for a in json.loads(result.output) if a["type"] == "denial_rate_drift"]
    assert drift and all(a["payer"] == "Aetna" for a in drift)


def test_backtest_takes_several_files_in_the_order_given(monthly_folder: Path) -> None:
    files = sorted(str(p) for p in monthly_folder.iterdir() if p.suffix in (".csv", ".835"))
    result = CliRunner().invoke(main, ["backtest", *files, "--from", "2025-06-01",
                                       "--to", "2025-09-30"])
    assert result.exit_code == 0, result.output
    drift = [a for a in json.loads(result.output) if a["type"] == "denial_rate_drift"]
    assert drift and all(a["payer"] == "Aetna" and a["created_at"] > "2025-07-15"
                         for a in drift)


def test_a_line_exported_again_later_replaces_its_first_version(tmp_path: Path) -> None:
    from upstream.offline import offline_context
    from upstream.offline_history import load_history

    header = "Claim ID,Payer,CPT,DOS,Billed,Status,Denial Reason\n"
    (tmp_path / "a-2025-01.csv").write_text(header + "C1,Aetna,97153,2025-01-02,100,Pending,\n")
    (tmp_path / "b-2025-02.csv").write_text(header + "C1,Aetna,97153,2025-01-02,100,Denied,"
                                            "CO-16; N290\n")
    history = load_history([tmp_path], offline_context())
    (line,) = history.claim_documents()
    assert line["outcome"] == "DENIED" and line["carc_codes"] == ["CO-16"]
    assert line["rarc_codes"] == ["N290"]


def test_one_unreadable_file_in_a_folder_names_that_file(monthly_folder: Path,
                                                         tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "with-a-bad-one"
    shutil.copytree(monthly_folder, folder)
    (folder / "claims-2025-10.csv").write_bytes(b"\x00\x01binary\x00" * 100)
    result = CliRunner().invoke(main, ["analyze", str(folder)])
    assert result.exit_code != 0 and "claims-2025-10.csv" in result.output


def test_a_folder_without_data_files_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("nothing here")
    result = CliRunner().invoke(main, ["analyze", str(tmp_path)])
    assert result.exit_code != 0 and "no data files" in result.output
    assert CliRunner().invoke(main, ["analyze"]).exit_code != 0
