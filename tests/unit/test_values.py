from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upstream.domain import values as v
from upstream.domain.records import Outcome

dates = st.dates(min_value=date(1970, 1, 1), max_value=date(2068, 12, 31))


@given(dates)
def test_every_supported_date_format_round_trips(d: date) -> None:
    for text in (d.isoformat(), f"{d.month:02d}/{d.day:02d}/{d.year}",
                 f"{d.month}/{d.day}/{d.year % 100:02d}", d.strftime("%Y%m%d"),
                 f"{d.isoformat()}T10:30:00Z"):
        assert v.parse_date(text) == d


@given(st.dates(min_value=date(1954, 10, 3), max_value=date(2119, 1, 10)))
def test_excel_serials(d: date) -> None:
    serial = (d - date(1899, 12, 30)).days
    assert v.parse_date(str(serial)) == d
    assert v.parse_date(f"{serial}.0") == d


@pytest.mark.parametrize("bad", ["13/45/2024", "2024-02-30", "yesterday", "123", "99999999"])
def test_bad_dates_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(v.InvalidValue) as exc:
        v.parse_date(bad)
    assert exc.value.reason == "invalid_date"


def test_blank_cells_are_none() -> None:
    assert v.parse_date("  ") is None
    assert v.parse_money("\u00a0") is None
    assert v.parse_procedure("") is None


@given(st.integers(min_value=-10**11, max_value=10**11))
def test_money_formats_round_trip_to_exact_cents(cents: int) -> None:
    dollars = abs(cents) / 100
    sign = "-" if cents < 0 else ""
    assert v.parse_money(f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}") == cents
    assert v.parse_money(f"{sign}${dollars:,.2f}") == cents
    if cents < 0:
        assert v.parse_money(f"({abs(cents) // 100}.{abs(cents) % 100:02d})") == cents


@pytest.mark.parametrize(("text", "cents"), [
    ("1234.5", 123450), ("$1,234.50", 123450), ("(12.00)", -1200), ("12-", -1200),
    ("0.005", 1), ("USD 10", 1000), ("1,000", 100000),
])
def test_money_examples(text: str, cents: int) -> None:
    assert v.parse_money(text) == cents


@pytest.mark.parametrize("bad", ["abc", "12.3.4", "$", "1e5", "--1"])
def test_bad_money(bad: str) -> None:
    with pytest.raises(v.InvalidValue):
        v.parse_money(bad)


@pytest.mark.parametrize(("text", "code", "mods"), [
    ("97153", "97153", ()), ("97153-HN", "97153", ("HN",)),
    ("97153 HN 59", "97153", ("HN", "59")), ("97153.0", "97153", ()),
    ("97153HN", "97153", ("HN",)), ("g0283", "G0283", ()), ("100", "00100", ()),
    ("0001F", "0001F", ()), ("0202T", "0202T", ()), ("97110:GP", "97110", ("GP",)),
])
def test_procedure_codes(text: str, code: str, mods: tuple[str, ...]) -> None:
    assert v.parse_procedure(text) == (code, mods)


@pytest.mark.parametrize("bad", ["ABC", "9715", "971533", "=1+1", "97153-HNX"])
def test_bad_procedure_codes(bad: str) -> None:
    with pytest.raises(v.InvalidValue):
        v.parse_procedure(bad)


@pytest.mark.parametrize(("text", "outcome"), [
    ("Paid", Outcome.PAID), ("DENIED", Outcome.DENIED), ("Partially Paid", Outcome.PARTIAL),
    ("in_process", Outcome.PENDING), ("Voided", Outcome.VOID), ("rejected", Outcome.DENIED),
])
def test_outcomes(text: str, outcome: Outcome) -> None:
    assert v.parse_outcome(text) is outcome


def test_unknown_outcome_is_an_error_not_a_guess() -> None:
    with pytest.raises(v.InvalidValue):
        v.parse_outcome("maybe")


def test_outcome_inferred_from_money_when_no_status_column() -> None:
    assert v.infer_outcome(paid_cents=100, billed_cents=100, allowed_cents=None, decided=True,
                           has_denial_codes=False) is Outcome.PAID
    assert v.infer_outcome(paid_cents=50, billed_cents=100, allowed_cents=100, decided=True,
                           has_denial_codes=True) is Outcome.PARTIAL
    assert v.infer_outcome(paid_cents=0, billed_cents=100, allowed_cents=None, decided=True,
                           has_denial_codes=True) is Outcome.DENIED
    assert v.infer_outcome(paid_cents=None, billed_cents=100, allowed_cents=None,
                           decided=False, has_denial_codes=False) is Outcome.PENDING


def test_carc_lists() -> None:
    assert v.parse_carc_list("CO-97, PR 1; co45 OA-23 B10") == (
        "CO-97", "PR-1", "CO-45", "OA-23", "B10")
    assert v.parse_carc_list("97") == ("97",)
    with pytest.raises(v.InvalidValue):
        v.parse_carc_list("CO-XYZ1")


def test_rarc_and_diagnoses() -> None:
    assert v.parse_rarc_list("N130, MA130 m15") == ("N130", "MA130", "M15")
    assert v.parse_diagnosis_list("F84.0; f84.0, Z00.00") == ("F840", "Z0000")
    with pytest.raises(v.InvalidValue):
        v.parse_diagnosis_list("840")


def test_identifiers_lose_spreadsheet_float_suffix() -> None:
    assert v.parse_identifier("12345.0") == "12345"
    assert v.parse_npi("1234567893.0") == "1234567893"
    with pytest.raises(v.InvalidValue):
        v.parse_npi("12345")


def test_numbers() -> None:
    assert v.parse_int("16.0") == 16
    with pytest.raises(v.InvalidValue):
        v.parse_int("1.5")
    with pytest.raises(v.InvalidValue):
        v.parse_number("-3")
    with pytest.raises(v.InvalidValue):
        v.parse_number("nan")
    assert v.parse_date("1/2/70") == date(1970, 1, 2)
    assert v.parse_date("1/2/69") == date(2069, 1, 2)
    assert v.parse_date("45292") == date(2024, 1, 1)


def test_a_procedure_cell_of_separators_only_is_invalid_not_a_crash() -> None:
    import pytest

    from upstream.domain.values import InvalidValue, parse_procedure

    for cell in ("/", "-", " : ", ",,", "²", "١٠٠", "٩٧١٥٣"):  # superscript, Arabic-Indic
        with pytest.raises(InvalidValue, match="invalid_cpt"):
            parse_procedure(cell)


def test_a_column_mixing_adjustment_and_remark_codes_is_split() -> None:
    assert v.split_adjustment_codes("CO-16; N290") == (("CO-16",), ("N290",))
    assert v.split_adjustment_codes("co 45, MA130 PR-1 m15 B10") == (
        ("CO-45", "PR-1", "B10"), ("MA130", "M15"))
    assert v.split_adjustment_codes(None) == ((), ())


def test_a_remark_code_is_never_stored_as_an_adjustment_reason() -> None:
    with pytest.raises(v.InvalidValue):
        v.parse_carc_list("N290")
    with pytest.raises(v.InvalidValue):  # no CARC series starts with C, N or M
        v.split_adjustment_codes("CO-C12")
