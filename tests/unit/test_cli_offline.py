import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from upstream.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_writes_records_and_rejects(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "claims.csv"
    src.write_bytes(b"\xef\xbb\xbfClaim #;Payer Name;Procedure Code;DOS;Patient ID\r\n"
                    b"C1;UHC;97153-HN;01/02/2024;MRN77\r\nC2;UHC;??;01/02/2024;MRN78\r\n")
    result = runner.invoke(main, ["validate", str(src), "--records", str(tmp_path / "r.jsonl"),
                                  "--rejects", str(tmp_path / "x.csv")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 2 and summary["accepted"] == 1
    assert summary["reasons"] == {"invalid_cpt": 1}
    record = json.loads((tmp_path / "r.jsonl").read_text())
    assert record["payer"] == "UnitedHealthcare" and record["modifiers"] == ["HN"]
    assert "MRN77" not in (tmp_path / "r.jsonl").read_text()
    assert "invalid_cpt" in (tmp_path / "x.csv").read_text()


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff" * 100, b"PK\x03\x04xlsx",
                                     b"one,two\n1,2\n"])
def test_unreadable_file_exits_2_with_one_line(runner: CliRunner, tmp_path: Path,
                                               content: bytes) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    result = runner.invoke(main, ["validate", str(src)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("upstream: ")


def test_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2


def test_sample_files_validate_with_only_the_injected_breakage(runner: CliRunner,
                                                               tmp_path: Path) -> None:
    assert runner.invoke(main, ["sample", "--out", str(tmp_path), "--start", "2025-01-01",
                                "--end", "2025-03-31"]).exit_code == 0
    for path in sorted((tmp_path / "claims").iterdir()):
        result = runner.invoke(main, ["validate", str(path)])
        summary = json.loads(result.output)
        assert summary["kind"] == "claims"
        assert summary["rejected"] <= summary["rows"] * 0.02
        assert set(summary["reasons"]) <= {"invalid_cpt", "invalid_date", "missing_payer",
                                           "duplicate_row"}


def test_validate_remittance_prints_what_the_835_decided(runner: CliRunner,
                                                         tmp_path: Path) -> None:
    from tests.x12 import Clp, Svc, build_835

    src = tmp_path / "era.835"
    src.write_bytes(build_835([
        Clp("C1", "1", "200", "100", [Svc("97153", "100", "100"),
                                      Svc("97155", "100", "0", cas=(("CO", "197", "100"),))]),
        Clp("C2", "1", "100", "100", [Svc("97153", "1OO", "100")]),
    ]))
    for kind in ([], ["--kind", "remittance"]):  # detected from the ISA header, or named
        result = runner.invoke(main, ["validate", str(src), *kind, "--records",
                                      str(tmp_path / "r.jsonl"), "--rejects",
                                      str(tmp_path / "x.csv")])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert (summary["kind"], summary["rows"], summary["accepted"], summary["rejected"]) == (
            "remittance", 2, 1, 1)
    records = [json.loads(r) for r in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["cpt"], r["outcome"], r["carc_codes"]) for r in records] == [
        ("97153", "PAID", []), ("97155", "DENIED", ["CO-197"])]
    assert "invalid_money" in (tmp_path / "x.csv").read_text()


def test_validate_remittance_refuses_a_broken_envelope_in_one_line(runner: CliRunner,
                                                                   tmp_path: Path) -> None:
    from tests.x12 import Clp, Svc, build_835

    src = tmp_path / "era.835"
    src.write_bytes(build_835([Clp("C1", "1", "1", "1", [Svc("97153", "1", "1")])], se_delta=1))
    result = runner.invoke(main, ["validate", str(src), "--kind", "remittance"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "malformed_835" in result.stderr
    assert "SE count" in result.stderr
