"""The second factor's rules, pure: RFC 6238's own test vector, one step of drift and no
more, each step once, the lock after five wrong codes, which roles need a code, the sealed
pending step, and secrets that differ per practice, person and enrolment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upstream.domain.practice import second_factor as factor
from upstream.domain.practice.people import for_key, for_user
from upstream.domain.practice.second_factor import FactorState, Pending

RFC_SECRET = b"12345678901234567890"  # RFC 6238 appendix B, SHA-1
NOW = datetime(2026, 11, 30, 12, 0, 15, tzinfo=UTC)
KEY = b"k" * 32


def test_rfc_6238_vectors_truncated_to_six_digits() -> None:
    # Appendix B gives 8 digits; six are the same value mod 10^6 (RFC 4226 5.3).
    for when, eight in ((59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
                        (2000000000, "69279037")):
        assert factor.code_at(RFC_SECRET, when) == eight[-6:]


def _code(offset_steps: int) -> str:
    return factor.code_at(RFC_SECRET, NOW.timestamp() + offset_steps * factor.STEP_SECONDS)


def test_one_step_of_drift_either_way_and_no_more() -> None:
    current = int(NOW.timestamp()) // factor.STEP_SECONDS
    for offset in (-1, 0, 1):
        assert factor.matching_step(RFC_SECRET, _code(offset), NOW, None) == current + offset
    for offset in (-3, -2, 2, 3):
        code = _code(offset)
        if code not in {_code(-1), _code(0), _code(1)}:
            assert factor.matching_step(RFC_SECRET, code, NOW, None) is None


def test_a_step_is_used_once() -> None:
    current = int(NOW.timestamp()) // factor.STEP_SECONDS
    assert factor.matching_step(RFC_SECRET, _code(0), NOW, current) is None
    assert factor.matching_step(RFC_SECRET, _code(0), NOW, current - 1) == current
    assert factor.matching_step(RFC_SECRET, _code(1), NOW, current) == current + 1


def test_spaces_are_forgiven_and_other_characters_are_not() -> None:
    code = _code(0)
    assert factor.matching_step(RFC_SECRET, f" {code[:3]} {code[3:]} ", NOW, None)
    for junk in (code + "0", code[:5], "١٢٣٤٥٦", "12345x", "", "-12345"):
        assert factor.matching_step(RFC_SECRET, junk, NOW, None) is None


@given(st.text(max_size=40))
def test_any_other_text_is_refused(text: str) -> None:
    if text.strip().replace(" ", "") in {_code(-1), _code(0), _code(1)}:
        return
    assert factor.matching_step(RFC_SECRET, text, NOW, None) is None


def test_five_wrong_codes_lock_for_fifteen_minutes_and_a_right_one_forgets() -> None:
    state = FactorState(active_nonce="n")
    for _ in range(factor.MAX_FAILURES - 1):
        state = factor.after_failure(state, NOW)
        assert not state.locked(NOW)
    state = factor.after_failure(state, NOW)
    assert state.locked(NOW) and state.locked(NOW + timedelta(minutes=14))
    assert not state.locked(NOW + timedelta(minutes=factor.LOCK_MINUTES, seconds=1))
    assert state.failures == 0 and state.active_nonce == "n"
    good = factor.after_success(FactorState("n", None, 10, 3, None), 12)
    assert (good.failures, good.last_step, good.active_nonce) == (0, 12, "n")


def test_a_confirmed_enrolment_becomes_the_authenticator() -> None:
    enrolled = factor.after_success(FactorState(None, "fresh", None, 2, None), 7)
    assert (enrolled.active_nonce, enrolled.pending_nonce, enrolled.enrolled) == \
        ("fresh", None, True)


def test_state_round_trips_through_its_document() -> None:
    state = FactorState("a", "p", 9, 2, NOW)
    assert FactorState.of(state.to_doc()) == state
    assert FactorState.of(None) == FactorState()
    assert FactorState.of({"locked_until": "not a time", "failures": None}) == FactorState()


def test_who_needs_a_code() -> None:
    owner, biller = for_user("acme", "o@a.test", "owner"), for_user("acme", "b@a.test", "biller")
    marked = for_user("acme", "o@a.test", "owner", second_factor=True)
    key = for_key("acme", "k1", ["write"])
    default = ("owner", "admin")
    assert not factor.satisfied(owner, {}, default)
    assert factor.satisfied(marked, {}, default)
    assert factor.satisfied(biller, {}, default)
    assert factor.satisfied(key, {}, default)  # machines have keys, not phones
    assert factor.satisfied(owner, {"mfa_roles": []}, default)  # the practice chose none
    assert not factor.satisfied(biller, {"mfa_roles": ["biller"]}, ())
    assert factor.required_roles({"mfa_roles": ["owner", "root", 5]}, ()) == {"owner"}
    assert factor.required_roles({"mfa_roles": "owner"}, ("admin",)) == {"admin"}


def test_secrets_differ_per_practice_person_and_enrolment() -> None:
    base = factor.secret(KEY, "acme", "u1", "n1")
    others = [factor.secret(KEY, "beta", "u1", "n1"), factor.secret(KEY, "acme", "u2", "n1"),
              factor.secret(KEY, "acme", "u1", "n2"), factor.secret(b"x" * 32, "acme", "u1",
                                                                    "n1")]
    assert len(base) == factor.SECRET_BYTES and base not in others
    assert factor.secret(KEY, "acme", "u1", "n1") == base
    uri = factor.provisioning_uri(base, "o@a.test", "Upstream")
    assert uri.startswith("otpauth://totp/") and factor.base32(base) in uri
    assert "=" not in factor.base32(base)


def test_the_pending_step_is_sealed() -> None:
    pending = Pending("acme", "u1", "o@a.test", "/alerts", "t1")
    sealed = factor.seal_pending(KEY, pending, NOW)
    assert factor.open_pending(KEY, sealed, NOW) == pending
    later = NOW + timedelta(minutes=factor.PENDING_MINUTES, seconds=1)
    assert factor.open_pending(KEY, sealed, later) is None
    assert factor.open_pending(b"y" * 32, sealed, NOW) is None
    assert factor.open_pending(KEY, sealed[:-2] + "AA", NOW) is None
    assert factor.open_pending(KEY, None, NOW) is None


@pytest.mark.parametrize("other", ["sso-state", "csrf", ""])
def test_a_value_sealed_for_another_step_does_not_open(other: str) -> None:
    from upstream.domain import sealed

    forged = sealed.seal(KEY, other, {"c": "acme", "u": "u1", "m": "o@a.test", "t": "/",
                                      "k": "t"}, NOW + timedelta(minutes=1))
    assert factor.open_pending(KEY, forged, NOW) is None
