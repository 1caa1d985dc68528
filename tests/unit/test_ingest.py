import csv
import io
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.domain.headers import detect_kind, map_columns
from upstream.domain.ingest import Rejected, TenantContext, parse_records
from upstream.domain.patient import PatientHasher
from upstream.domain.payers import PayerNormalizer
from upstream.domain.records import Authorization, ClaimLine, Outcome, RecordKind
from upstream.domain.rejects import RejectsWriter
from upstream.domain.table import open_table

CTX = TenantContext("acme", PatientHasher(b"k" * 32), PayerNormalizer(),
                    datetime(2024, 6, 1, tzinfo=UTC))


def parse(text: str, kind: RecordKind = RecordKind.CLAIMS):  # type: ignore[no-untyped-def]
    t = open_table(io.BytesIO(text.encode()),
                   lambda c: not map_columns(c, kind).missing_required())
    report, items = parse_records(t, kind, CTX)
    return report, list(items), t


def test_messy_claims_export_is_normalized() -> None:
    report, items, _ = parse(
        "Claim #,Patient ID,Primary Insurance,CPT Code,Mod 1,Mod 2,Dx1,DOS,Total Charges,"
        "Paid,Claim Status,Denial Reason,Rendering NPI,Notes\r\n"
        'C1,00123,UHC,97153-HN,59,,F84.0,01/02/2024,"$1,234.50",0,Denied,"CO-97, PR 1",'
        "1234567893.0,x\r\n")
    (line,) = items
    assert isinstance(line, ClaimLine)
    assert (line.payer, line.payer_raw, line.cpt, line.modifiers) == (
        "UnitedHealthcare", "UHC", "97153", ("HN", "59"))
    assert line.billed_cents == 123450 and line.paid_cents == 0
    assert line.outcome is Outcome.DENIED and line.carc_codes == ("CO-97", "PR-1")
    assert line.diagnosis_codes == ("F840",) and line.provider_npi == "1234567893"
    assert line.patient_key == PatientHasher(b"k" * 32)("123")
    assert "00123" not in line.model_dump_json()
    assert report.unknown_columns == ["Notes"]


def test_every_row_is_accounted_for_and_rejects_have_reasons() -> None:
    report, items, _ = parse(
        "Claim ID,Payer,CPT,DOS,Billed\r\n"
        "C1,Aetna,97153,2024-01-02,10\r\n"
        "C1,Aetna,97153,2024-01-02,10\r\n"          # exact duplicate row
        "C2,Aetna,XYZ,2024-01-02,10\r\n"            # bad code
        "C3,,97153,2024-01-02,10\r\n"               # no payer
        "C4,Aetna,97153,,10\r\n"                    # no date at all
        "C5,Aetna,97153,2024-01-02,ten\r\n"         # bad money
        "C6,Aetna,97153,2024-01-02,10,extra\r\n"    # shifted row
        ",Aetna,97153,2024-01-02,10\r\n")           # no claim id
    reasons = [i.reason for i in items if isinstance(i, Rejected)]
    assert reasons == ["duplicate_row", "invalid_cpt", "missing_payer", "missing_date",
                       "invalid_money", "too_many_fields", "missing_claim_id"]
    assert report.rows == 8 == report.accepted + report.rejected
    assert [i.line for i in items if isinstance(i, Rejected)] == [3, 4, 5, 6, 7, 8, 9]


def test_conflicting_versions_of_one_numbered_line_keep_the_first() -> None:
    _, items, _ = parse("Claim ID,Line,Payer,CPT,DOS,Status\r\n"
                        "C1,1,Aetna,97153,2024-01-02,Paid\r\n"
                        "C1,1,Aetna,97153,2024-01-02,Denied\r\n")
    assert isinstance(items[0], ClaimLine)
    assert isinstance(items[1], Rejected) and items[1].reason == "duplicate_line"


def test_unnumbered_lines_get_ordinals_and_content_identity() -> None:
    _, items, _ = parse("Claim ID,Payer,CPT,DOS,Units\r\n"
                        "C1,Aetna,97153,2024-01-02,4\r\n"
                        "C1,Aetna,97155,2024-01-02,2\r\n"
                        "C1,Aetna,97153,2024-01-02,3\r\n")
    lines = [i for i in items if isinstance(i, ClaimLine)]
    assert [x.line for x in lines] == [1, 2, 3]
    assert len({x.doc_id for x in lines}) == 3
    # A corrected row uploaded alone lands on its own line, not on line 1 of the claim.
    _, alone, _ = parse("Claim ID,Payer,CPT,DOS,Units\r\nC1,Aetna,97155,2024-01-02,2\r\n")
    assert alone[0].doc_id == lines[1].doc_id  # type: ignore[union-attr]


def test_formula_cells_are_neutralized_in_the_rejects_file() -> None:
    _, items, t = parse("Claim ID,Payer,CPT,DOS\r\n"
                        '=HYPERLINK("x"),@SUM(A1),+97153,-2024\r\n')
    out = io.StringIO()
    writer = RejectsWriter(out, t.header)
    for item in items:
        assert isinstance(item, Rejected)
        writer.write(item)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["line", "reason", "detail", "Claim ID", "Payer", "CPT", "DOS"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert rows[1][3] == "'=HYPERLINK(\"x\")"


def test_authorizations_file() -> None:
    report, items, t = parse(
        "Auth Number,Patient ID,Payer,Service Type,CPT Codes,Start Date,End Date,"
        "Units Authorized,Units Used\r\n"
        'A1,123,UHC,ABA,"97153, 97155",01/01/2024,06/30/2024,480,120\r\n'
        "A2,124,Aetna,ABA,97153,07/01/2024,06/30/2024,10,1\r\n", RecordKind.AUTHORIZATIONS)
    assert detect_kind(t.header) is RecordKind.AUTHORIZATIONS
    auth = items[0]
    assert isinstance(auth, Authorization)
    assert auth.cpt_codes == ("97153", "97155") and auth.payer == "UnitedHealthcare"
    assert isinstance(items[1], Rejected) and items[1].reason == "invalid_date_range"
    assert report.accepted == 1


def test_claims_header_is_detected_as_claims() -> None:
    assert detect_kind(["Claim ID", "Payer", "CPT", "DOS"]) is RecordKind.CLAIMS


cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
               max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(cell, min_size=0, max_size=7), max_size=12))
def test_no_row_is_ever_lost_whatever_the_cells(rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Claim ID", "Payer", "CPT", "DOS", "Billed", "Status"])
    writer.writerows(rows)
    report, items, _ = parse(out.getvalue())
    parsed_back = csv.reader(io.StringIO(out.getvalue()))
    non_blank = sum(1 for r in parsed_back if any(c.strip() for c in r)) - 1
    assert report.rows == len(items) == report.accepted + report.rejected
    assert report.rows == non_blank


def test_formulas_in_payer_and_text_fields_are_refused_at_ingest() -> None:
    report, items, _ = parse(
        "Claim ID,Payer,CPT,DOS,Plan Type,Rendering Credential\r\n"
        'C1,"=HYPERLINK(""http://evil.example"",""click"")",97153,2024-01-02,,\r\n'
        'C2,"\t=1+1",97153,2024-01-02,,\r\n'
        "C3,@SUM(A1),97153,2024-01-02,,\r\n"
        "C4,Aetna,97153,2024-01-02,+cmd|calc,\r\n"
        "-2+3+cmd,Aetna,97153,2024-01-02,,\r\n"
        "-1042,Aetna,97153,2024-01-02,,\r\n"  # a negative-looking claim number is a number
        "C6,Aetna,97153,2024-01-02,,BCBA\r\n")
    reasons = [(i.line, i.reason) for i in items if isinstance(i, Rejected)]
    assert reasons == [(2, "spreadsheet_formula"), (3, "spreadsheet_formula"),
                       (4, "spreadsheet_formula"), (5, "spreadsheet_formula"),
                       (6, "spreadsheet_formula")]
    stored = [i for i in items if isinstance(i, ClaimLine)]
    assert [s.claim_id for s in stored] == ["-1042", "C6"] and report.accepted == 2


def test_rejects_mask_the_patient_id_and_leave_out_columns_upstream_does_not_read() -> None:
    _, items, t = parse(
        "Claim ID,Patient ID,Patient Name,DOB,Payer,CPT,DOS\r\n"
        "C1,MRN-000123,Jane Q Public,1980-02-03,Aetna,NOPE,2024-01-02\r\n"
        "C1,MRN-000123,Jane Q Public,1980-02-03,Aetna,NOPE,2024-01-02\r\n")
    out = io.StringIO()
    writer = RejectsWriter(out, t.header)
    for item in items:
        assert isinstance(item, Rejected)
        writer.write(item)
    text = out.getvalue()
    assert "MRN-000123" not in text and "000123" not in text
    assert "Jane" not in text and "1980-02-03" not in text
    rows = list(csv.reader(io.StringIO(text)))
    key = PatientHasher(b"k" * 32)("MRN-000123")[:8]
    assert rows[1][3:] == ["C1", f"[patient key {key}]", "", "", "Aetna", "NOPE", "2024-01-02"]
    assert [r[1] for r in rows[1:]] == ["invalid_cpt", "duplicate_row"]


def test_a_cell_of_thousands_of_digits_is_a_rejected_row_not_a_failed_upload() -> None:
    """Found by `make fuzz`: int() of a 5,000-digit CPT raised ValueError (CPython's
    int-parsing limit) and failed the whole file."""
    report, items, _ = parse("Claim ID,Payer,CPT,DOS\r\n"
                             f"C1,Aetna,{'9' * 5000},2024-01-02\r\n"
                             f"C2,Aetna,97153,{'4' * 5}.{'9' * 400}\r\n"
                             f"C3,Aetna,97153,{'9' * 400}\r\n")
    assert [i.reason for i in items if isinstance(i, Rejected)] == [
        "invalid_cpt", "invalid_date"]
    assert report.accepted == 1  # an Excel serial with a long fraction is still a date


def test_an_adjustment_column_mixing_carcs_and_rarcs_stores_each_where_it_belongs() -> None:
    _, items, _ = parse(
        "Claim ID,Payer,CPT,DOS,Billed,Status,Adj Codes,Remark Codes\r\n"
        'C1,Aetna,97153,01/02/2024,100,Denied,"CO-16; N290",MA130\r\n')
    (line,) = items
    assert isinstance(line, ClaimLine)
    assert line.carc_codes == ("CO-16",) and line.rarc_codes == ("MA130", "N290")
