"""The denial-code catalogue: every CARC of the shared CC0 list, the remark codes, hostile
input, and a practice's own remark list."""

from __future__ import annotations

import csv
import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SHARED
from upstream.cli import main
from upstream.domain.codes.catalogue import carc_table, describe_carc, explain, rarc_table
from upstream.domain.codes.categories import CATEGORIES
from upstream.domain.codes.remarks_file import RemarksFileError, read_remarks

SHARED_CARCS = SHARED / "data" / "carc-codes" / "carc_codes.csv"
X12_835 = SHARED / "data" / "x12-835"


def shared_carcs() -> dict[str, str]:
    with SHARED_CARCS.open(encoding="utf-8") as stream:
        return {row["code"]: row["description"] for row in csv.DictReader(stream)}


def test_every_shared_carc_has_category_meaning_and_action() -> None:
    codes = shared_carcs()
    assert len(codes) == 407 and set(carc_table()) == set(codes)
    for code, official in codes.items():
        entry = explain(code)
        assert entry["known"] and entry["kind"] == "carc", code
        assert entry["category"] in CATEGORIES
        assert len(entry["meaning"]) >= 8 and len(entry["action"]) >= 4
        assert entry["official"] == official.removesuffix(" INACTIVE")
        assert entry["inactive"] == official.endswith("INACTIVE")


def test_group_prefixes_and_spellings_mean_the_same_code() -> None:
    for spelling in ("CO-97", "co 97", "CO97", "co-097", " CO-97 "):
        entry = explain(spelling)
        assert entry["code"] == "CO-97" and entry["category"] == "bundled"
    assert explain("97")["code"] == "97" and explain("97")["group"] is None
    assert explain("PR-1")["group"] == "patient responsibility"
    assert explain("CO-B7")["category"] == "provider"
    assert explain("OA-23")["group_code"] == "OA"
    assert explain("PI-45")["group_code"] == "PI" and explain("CR-18")["group_code"] == "CR"


def test_the_issue_examples_are_answered() -> None:
    assert "certified" in explain("CO-B7")["meaning"]
    assert explain("N290")["kind"] == "rarc" and "NPI" in explain("N290")["meaning"]
    assert "NCCI" in explain("236")["basis"] or "NCCI" in explain("236")["meaning"]
    assert explain("PR-204")["category"] == "non_covered"


def test_every_real_remark_code_in_the_shared_835_files_is_explained() -> None:
    found = set()
    for path in X12_835.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            found |= set(re.findall(r"LQ\*HE\*((?:MA|M|N)\d{1,3})(?=[~*\n])", text))
    assert found >= {"M75", "N1", "N20", "MA92"}
    missing = [code for code in found if not explain(code)["known"]]
    assert not missing
    assert all(explain(c)["family"].startswith("remark") for c in found)


def test_alert_remarks_are_flagged_and_rarc_families_named() -> None:
    assert explain("N1")["alert"] and not explain("N290")["alert"]
    assert "MA series" in explain("MA130")["family"]
    assert "M series" in explain("M25")["family"]
    assert len(rarc_table()) >= 50


@pytest.mark.parametrize("code", ["CO-999", "999", "CO-Z1", "N9999", "X999", "XX99", "97153",
                                  "", "CO-", "-97", "CO--97", "\u0000", "CO-97; DROP"])
def test_unknown_or_malformed_codes_say_so(code: str) -> None:
    entry = explain(code)
    assert entry["known"] is False
    assert "not" in entry["meaning"].lower() or "no reason" in entry["meaning"].lower()


def test_no_code_is_what_the_aggregates_count_a_bare_denial_under() -> None:
    assert explain("none")["meaning"].startswith("No reason code")


@given(st.text(max_size=300))
def test_explain_never_raises_and_never_echoes_more_than_40_characters(text: str) -> None:
    entry = explain(text)
    assert isinstance(entry["known"], bool)
    assert len(entry["code"]) <= 40


def test_describe_carc_is_the_short_form_alerts_carry() -> None:
    short = describe_carc("CO-197")
    assert set(short) == {"code", "group", "category", "meaning", "action", "basis"}
    assert short["category"] == "Authorization or precertification"
    assert describe_carc("CO-99999")["meaning"].startswith("Reason code not in") is False
    assert describe_carc("CO-999")["meaning"].startswith("Reason code not in")


def test_statutory_codes_cite_their_law() -> None:
    assert "Budget Control Act" in explain("253")["basis"]
    assert "45 CFR 162.410" in explain("206")["basis"]
    assert "1395nn" in explain("213")["basis"]
    assert "42 CFR 424.44" in explain("29")["basis"]


# --- a practice's licensed remark list -------------------------------------------------------

def test_a_licensed_remark_list_fills_the_gaps() -> None:
    remarks = read_remarks("\ufeffcode,description\nN999,Some licensed text.\nN290,Theirs.\n")
    assert explain("N999", remarks)["meaning"] == "Some licensed text."
    assert explain("N999", remarks)["known"] and not explain("N999")["known"]
    ours = explain("N290", remarks)
    assert "NPI" in ours["meaning"] and ours["official"] == "Theirs."


@pytest.mark.parametrize("text, problem", [
    ("", "header"), ("id,text\nN1,x\n", "header"), ("code,description\nCO-97,x\n", "line 2"),
    ("code,description\nN1,\n", "line 2"), ("code,description\nN1\n", "line 2"),
    ("code,description\nN1," + "x" * 2001 + "\n", "line 2"),
    ("code,description\n" + "".join(f"N{i % 1000},t{i}\n" for i in range(1)) + "=cmd(),x\n",
     "line 3"),
])
def test_a_bad_remark_list_is_refused_with_its_line(text: str, problem: str) -> None:
    with pytest.raises(RemarksFileError, match=problem):
        read_remarks(text)


def test_the_remark_list_has_a_row_limit() -> None:
    rows = "".join(f"N{i},t\n" for i in range(1000)) + "".join(f"M{i},t\n" for i in range(1000))
    rows += "".join(f"MA{i},t\n" for i in range(1000))
    assert len(read_remarks("code,description\n" + rows)) == 3000


# --- the command ---------------------------------------------------------------------------------

def test_upstream_carc_answers_each_code_in_json() -> None:
    result = CliRunner().invoke(main, ["carc", "CO-B7", "N290", "236", "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["code"] for e in entries] == ["CO-B7", "N290", "236"]
    assert all(e["known"] for e in entries)


def test_upstream_carc_table_says_unknown(tmp_path: object) -> None:
    result = CliRunner().invoke(main, ["carc", "CO-999", "PR-1"])
    assert result.exit_code == 0
    assert "CO-999: unknown" in result.output and "Patient responsibility" in result.output


def test_upstream_carc_reads_the_licensed_list_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "remarks.csv"
    listing.write_text("code,description\nN777,A licensed remark.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["carc", "N777"], env={"UPSTREAM_REMARK_CODES": str(listing)})
    assert result.exit_code == 0 and "A licensed remark." in result.output
    listing.write_text("code,description\nBAD,x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["carc", "N777", "--remark-codes", str(listing)])
    assert result.exit_code != 0 and "line 2" in result.output
    result = CliRunner().invoke(main, ["carc", "N1", "--remark-codes", str(tmp_path / "none")])
    assert result.exit_code != 0 and "cannot read" in result.output
