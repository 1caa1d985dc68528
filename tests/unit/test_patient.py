import pytest

from upstream.domain.patient import PatientHasher, canonical_patient_id


def test_patient_key_is_a_keyed_hash_not_the_id() -> None:
    key = PatientHasher(b"a" * 32)("MRN-00123")
    assert "00123" not in key and len(key) == 64


def test_tenants_with_different_keys_get_unrelated_patient_keys() -> None:
    assert PatientHasher(b"a" * 32)("123") != PatientHasher(b"b" * 32)("123")


def test_spreadsheet_mangling_does_not_split_a_patient() -> None:
    h = PatientHasher(b"k" * 32)
    assert h("00123") == h("123") == h("123.0") == h(" 123 ")
    assert h("ab-12") == h("AB-12")
    assert canonical_patient_id("000") == "0"


def test_short_keys_are_refused_and_the_key_never_prints() -> None:
    with pytest.raises(ValueError):
        PatientHasher(b"short")
    assert "k" * 32 not in repr(PatientHasher(b"k" * 32))
