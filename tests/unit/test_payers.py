import csv
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upstream.domain.payers import PayerNormalizer, lookup_key


def _alias_rows() -> list[dict[str, str]]:
    with resources.files("upstream.domain").joinpath("data/payer_aliases.csv").open() as f:
        return list(csv.DictReader(f))


normalizer = PayerNormalizer()


@pytest.mark.parametrize("row", _alias_rows(), ids=lambda r: r["alias"])
def test_every_builtin_alias_maps_to_its_canonical_name(row: dict[str, str]) -> None:
    assert normalizer.canonical(row["alias"]) == row["canonical"]
    assert normalizer.canonical(row["alias"].upper() + " ") == row["canonical"]


def test_alias_table_has_no_key_claimed_by_two_payers() -> None:
    owners: dict[str, set[str]] = {}
    for row in _alias_rows():
        owners.setdefault(lookup_key(row["alias"]), set()).add(row["canonical"])
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


@pytest.mark.parametrize(("raw", "canonical"), [
    ("UHC", "UnitedHealthcare"), ("United Healthcare", "UnitedHealthcare"),
    ("UNITED HEALTH CARE, INC.", "UnitedHealthcare"), ("unitedhealtcare", "UnitedHealthcare"),
    ("Aetna Health Inc.", "Aetna"), ("BCBS of Texas", "Blue Cross Blue Shield of Texas"),
])
def test_spellings(raw: str, canonical: str) -> None:
    assert normalizer.canonical(raw) == canonical


@pytest.mark.parametrize("raw", [
    "Blue Cross Blue Shield of Ohio", "Medicare Advantage", "Humana Gold Plus", "Aetan",
    "Lone Star Community Plan", "Plan 2", "Cigna 2",
])
def test_unknown_payers_stay_themselves_never_merged(raw: str) -> None:
    match = normalizer.match(raw)
    assert match.method == "unknown"
    assert match.canonical == " ".join(raw.split())


def test_tenant_aliases_win_over_builtin() -> None:
    tenant = PayerNormalizer({"Aetna": "Aetna Student Health", "acme hp": "ACME Health Plan"})
    assert tenant.canonical("AETNA") == "Aetna Student Health"
    assert tenant.canonical("Acme  HP") == "ACME Health Plan"
    assert tenant.match("ACME HP").method == "tenant"


@given(st.text(max_size=40))
def test_normalization_is_idempotent_and_total(raw: str) -> None:
    once = normalizer.canonical(raw)
    assert normalizer.canonical(once) == once


@given(st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=30))
def test_fuzzy_matches_are_close_in_length(raw: str) -> None:
    match = normalizer.match(raw)
    if match.method == "fuzzy":
        assert abs(len(lookup_key(raw)) - len(lookup_key(match.canonical))) <= 12
        assert match.score >= 90
