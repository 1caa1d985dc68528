"""The pre-submission risk score: rule factors, rules tables and tenant overrides, the
calibrated model, the check's bad input, and the API route."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED
from tests.unit.test_api import call, setup
from upstream.domain.aggregates import DailyCell
from upstream.domain.payers import PayerNormalizer
from upstream.domain.risk import calibrate
from upstream.domain.risk.check import CheckError, check, parse_claim
from upstream.domain.risk.rules import RulesTable, default_rules, with_overrides
from upstream.domain.risk.score import DenialHistory, Stats, category, score_line

DAY = date(2025, 6, 1)
EMPTY = DenialHistory()


def line(**changes: Any) -> dict[str, Any]:
    base = {"claim_id": "C1", "line": 1, "payer": "Aetna", "cpt": "97110", "modifiers": ["GP"],
            "diagnosis_codes": ["M54.50"], "service_date": DAY, "billed_cents": 12000}
    return {**base, **changes}


def names(found: Any) -> dict[str, int]:
    return {f.name: f.points for f in found.factors}


def test_a_clean_line_with_no_history_is_low_and_says_history_is_silent() -> None:
    found = score_line(line(), EMPTY, default_rules())
    assert (found.score, found.category, found.recommendation) == (0, "LOW", "SUBMIT")
    assert found.factors[0].evidence["basis"] == "none"


def test_missing_therapy_modifier_scores_20_and_proposes_the_fix() -> None:
    found = score_line(line(modifiers=[]), EMPTY, default_rules())
    assert names(found)["modifier_missing"] == 20
    assert found.fixes[0].action == "add_modifier"
    assert found.fixes[0].detail["one_of"] == ["GO", "GP"]
    assert found.fixes[0].confidence < 95  # two disciplines allowed: a guess, not automatic
    assert "Claims Processing Manual" in found.factors[1].evidence["source"]


def test_wrong_level_modifier_for_the_credential_scores_15() -> None:
    found = score_line(line(cpt="97153", modifiers=["HO"], provider_credential="RBT",
                            diagnosis_codes=["F84.0"], authorization_number="A1"),
                       EMPTY, default_rules(),
                       [{"authorization_number": "A1", "start_date": "2025-01-01",
                         "end_date": "2025-12-31"}])
    assert names(found) == {"historical_denial_rate": 0, "modifier_wrong": 15}
    assert not found.fixes  # a wrong level is a person's call, not an automatic fix


def test_history_falls_back_to_the_cpt_across_payers_below_10_lines() -> None:
    history = DenialHistory(pairs={("Aetna", "97110"): Stats(5, 5),
                                   ("Cigna", "97110"): Stats(20, 2)},
                            cpts={"97110": Stats(25, 7)}, recent={("Aetna", "97110"): 3})
    found = score_line(line(), history, default_rules())
    evidence = found.factors[0].evidence
    assert evidence["basis"] == "cpt_all_payers" and evidence["rate"] == 0.28
    assert names(found) == {"historical_denial_rate": 22, "recent_denials": 20}
    hot = DenialHistory(pairs={("Aetna", "97110"): Stats(10, 6)}, cpts={}, recent={})
    assert names(score_line(line(), hot, default_rules()))["historical_denial_rate"] == 40


def test_history_from_aggregate_cells_counts_the_30_day_streak() -> None:
    cells = [DailyCell("Aetna", DAY - timedelta(days=d),
                       {"cpt.97110.decided": 2, "cpt.97110.denied": 1, "decided": 2})
             for d in range(1, 61)] + [DailyCell("Aetna", DAY, {"cpt.97110.denied": 50})]
    history = DenialHistory.from_cells(cells, DAY)
    assert history.pairs[("Aetna", "97110")] == Stats(120, 60)  # the run day itself excluded
    assert history.recent[("Aetna", "97110")] == 30


def test_diagnosis_and_authorization_factors() -> None:
    rules = default_rules()
    aba = line(cpt="97153", modifiers=["HN"], diagnosis_codes=["Z00.00"])
    assert names(score_line(aba, EMPTY, rules))["diagnosis_mismatch"] == 10
    mri = line(payer="Cigna", cpt="72148", modifiers=[], diagnosis_codes=["M51.16"])
    missing = score_line(mri, EMPTY, rules)
    assert names(missing)["authorization"] == 10
    assert missing.factors[-1].evidence == {"problem": "missing", "program": "eviCore",
                                            "source": missing.factors[-1].evidence["source"]}
    auth = {"authorization_number": "X", "start_date": "2025-01-01", "end_date": "2025-05-01"}
    expired = score_line({**mri, "authorization_number": "X"}, EMPTY, rules, [auth])
    assert expired.factors[-1].evidence["problem"] == "expired"
    valid = {**auth, "end_date": "2025-07-01"}
    assert "authorization" not in names(score_line({**mri, "authorization_number": "X"},
                                                   EMPTY, rules, [valid]))
    # no diagnosis at all is not a mismatch (the clearinghouse catches it)
    assert "diagnosis_mismatch" not in names(score_line({**aba, "diagnosis_codes": []},
                                                       EMPTY, rules))


def test_tenant_overrides_replace_defaults_and_conflicts_are_reported() -> None:
    own = with_overrides(default_rules(), {"modifiers": [
        {"payer": "Aetna", "cpt": "97110", "modifiers": "GP|KX", "points_missing": 20}]})
    assert "modifier_missing" not in names(score_line(line(modifiers=["KX"]), EMPTY, own))
    assert "modifier_missing" in names(score_line(line(payer="Cigna", modifiers=["KX"]),
                                                  EMPTY, own))
    clash = with_overrides(RulesTable(), {"disable_defaults": True, "modifiers": [
        {"payer": "Aetna", "cpt": "97110", "modifiers": "GP"},
        {"payer": "Aetna", "cpt": "97110", "modifiers": "59"}]})
    assert clash.conflicts == ("Aetna 97110: 59 vs GP",)
    assert "modifier_missing" not in names(score_line(line(modifiers=["59"]), EMPTY, clash))
    bare = with_overrides(default_rules(), {"disable_defaults": True})
    assert names(score_line(line(modifiers=[]), EMPTY, bare)) == {"historical_denial_rate": 0}


@given(st.lists(st.sampled_from(["GP", "GO", "HN", "HO", "59", "KX", "XX"]), max_size=4),
       st.sampled_from(["97110", "97153", "72148", "99213", "ZZZZZ"]),
       st.sampled_from(["Aetna", "Cigna", "Medicaid", "Unknown Payer"]),
       st.floats(0, 1), st.integers(0, 10))
def test_any_line_scores_0_to_100_in_its_band(modifiers: list[str], cpt: str, payer: str,
                                              rate: float, recent: int) -> None:
    history = DenialHistory(pairs={(payer, cpt): Stats(100, 100 * rate)},
                            cpts={cpt: Stats(100, 100 * rate)}, recent={(payer, cpt): recent})
    found = score_line(line(cpt=cpt, payer=payer, modifiers=modifiers,
                            diagnosis_codes=["Z00.00"]), history, default_rules())
    assert 0 <= found.score <= 100 and found.category == category(found.score)
    assert found.score == min(100, sum(f.points for f in found.factors))


def test_the_check_refuses_bad_claims_with_the_field() -> None:
    payers = PayerNormalizer()
    good = {"payer": "aetna", "lines": [{"cpt": "97110", "modifiers": ["gp"],
                                         "billed_dollars": "120.00"}]}
    assert parse_claim(good, payers)[0]["payer"] == "Aetna"
    for bad, where in (({**good, "extra": 1}, "extra"),
                       ({"payer": "Aetna", "lines": []}, "lines"),
                       ({"payer": "Aetna", "lines": [{"cpt": "97110"}] * 101}, "lines"),
                       ({"payer": "Aetna", "lines": [{"cpt": "9711"}]}, "cpt"),
                       ({"payer": "Aetna", "lines": [{"cpt": "97110", "billed_dollars": -5}]},
                        "billed_dollars"),
                       ({"payer": "Aetna", "lines": [{"cpt": "97110",
                                                      "billed_dollars": 5_000_000}]},
                        "billed_dollars"),
                       ({"payer": "Aetna", "lines": [{"cpt": "97110", "modifiers": ["G P"]}]},
                        "modifiers"),
                       ({"payer": "Aetna", "lines": [{"cpt": "97110",
                                                      "diagnosis_codes": ["$where"]}]},
                        "diagnosis_codes"),
                       ({"resourceType": "Patient"}, "resourceType"),
                       ({"resourceType": "Claim"}, "FHIR Claim")):
        with pytest.raises(CheckError, match=where):
            parse_claim(bad, payers)
    fifty = {"payer": "Aetna", "lines": [{"cpt": "97110", "line": i} for i in range(1, 51)]}
    answer = check(parse_claim(fifty, payers), EMPTY, default_rules())
    assert len(answer["lines"]) == 50 and answer["score"] == 20  # all lack GP/GO
    assert all(row["fixes"][0]["action"] == "add_modifier" for row in answer["lines"])


def test_a_fhir_claim_is_scored() -> None:
    resource = json.loads((SHARED / "data/hl7-fhir-examples/claim-example-cms1500-medical.json")
                          .read_text())
    answer = check(parse_claim(resource, PayerNormalizer()), EMPTY, default_rules())
    assert answer["lines"] and 0 <= answer["score"] <= 100


def test_calibration_needs_history_and_learns_the_drivers() -> None:
    assert calibrate.fit([[0.0] * len(calibrate.FEATURES)] * 50, [False] * 50) is None
    rows, denied = [], []
    for i in range(1000):
        missing = i % 5 == 0
        rows.append([0.1, 1.0 if missing else 0.0] + [0.0] * (len(calibrate.FEATURES) - 2))
        denied.append((missing and i % 20 != 5) or i % 50 == 1)  # 3 in 4 missing deny
    model = calibrate.fit(rows, denied)
    assert model is not None and model.weights[1] > 2
    assert calibrate.auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert calibrate.auc([1, 1], [True, False]) == 0.5
    assert calibrate.auc([1], [True]) is None
    assert calibrate.band_precision([80, 90, 10], [True, False, False]) == (0.5, 2)
    scored = model.rescore(score_line(line(modifiers=[]), EMPTY, default_rules()))
    assert scored.method == "calibrated" and scored.category == "HIGH"
    assert scored.factors[1].evidence["log_odds"] > 2


def test_the_api_route_scores_and_refuses_bad_input() -> None:
    deps, _, tokens = setup()
    status, body = call(deps, "POST", "/v1/risk/score", tokens["read"],
                        body={"payer": "Aetna", "lines": [{"cpt": "97110"}]})
    assert status == 200 and body["lines"][0]["factors"][0]["name"] == "historical_denial_rate"
    assert call(deps, "POST", "/v1/risk/score", tokens["read"], body=b"{nope")[0] == 400
    status, body = call(deps, "POST", "/v1/risk/score", tokens["read"],
                        body={"payer": "Aetna", "lines": [{"cpt": "97110", "x": 1}]})
    assert status == 400 and "lines.0.x" in body["detail"]
    assert call(deps, "POST", "/v1/risk/score", None, body={})[0] == 401


def test_upstream_score_offline(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from upstream.cli import main

    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"payer": "Cigna", "lines": [{"cpt": "72148"}]}))
    done = CliRunner().invoke(main, ["score", str(claim)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["lines"][0]["factors"][1]["name"] == "authorization"
    claim.write_text("[1]")
    refused = CliRunner().invoke(main, ["score", str(claim)])
    assert refused.exit_code != 0 and "not a JSON object" in refused.output


def test_claim_factors_from_the_specialty_rules() -> None:
    from upstream.domain.risk.claim_factors import claim_factors

    lines = [line(cpt="97155", modifiers=["HO"], provider_credential="RBT", units=2,
                  minutes=30, diagnosis_codes=["F84.0"]),
             line(cpt="97110", units=2, minutes=20, patient_key="p"),
             line(cpt="97140", units=2, minutes=20, patient_key="p", line=3)]
    extra = claim_factors(lines)
    assert [f.name for f in extra[0]] == ["credential_code_mismatch"]
    assert [f.name for f in extra[1]] == ["units_exceed_minutes"] == [f.name for f in extra[2]]
    answer = check(lines, EMPTY, default_rules())
    assert answer["lines"][1]["factors"][-1]["evidence"]["day_minutes"] == 40


def _year(seed: int = 3) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    lines = []
    for day in range(330):
        service = date(2025, 1, 1) + timedelta(days=day)
        for n in range(12):
            missing = rng.random() < 0.15
            denied = rng.random() < (0.85 if missing else 0.05)
            lines.append(line(claim_id=f"C{day}-{n}", payer=rng.choice(["Aetna", "Cigna"]),
                              modifiers=[] if missing else ["GP"],
                              service_date=service.isoformat(),
                              submitted_date=(service + timedelta(days=2)).isoformat(),
                              decided_date=(service + timedelta(days=20)).isoformat(),
                              outcome="DENIED" if denied else "PAID"))
    return lines


def test_sliding_histories_equal_the_one_day_computation() -> None:
    from upstream.domain.aggregates import cells_from_documents
    from upstream.domain.risk.score import histories_for

    cells = cells_from_documents(_year()[:2000])
    days = [date(2025, 1, 1) + timedelta(days=d) for d in (0, 17, 45, 46, 120, 200)]
    sliding = histories_for(cells, days)
    for day in days:
        direct = DenialHistory.from_cells(cells, day)
        assert sliding[day].pairs.keys() == direct.pairs.keys()
        for key, stats in direct.pairs.items():
            assert sliding[day].pairs[key].decided == pytest.approx(stats.decided)
            assert sliding[day].pairs[key].denied == pytest.approx(stats.denied)
        assert {k: v for k, v in direct.recent.items() if v} == pytest.approx(
            sliding[day].recent)


def test_a_tenant_model_is_adopted_only_when_the_holdout_earns_it() -> None:
    from upstream.domain.aggregates import cells_from_documents
    from upstream.domain.risk.training import fit_for_tenant, training_rows

    lines = _year()
    rows = training_rows(lines, cells_from_documents(lines), default_rules())
    model, report = fit_for_tenant(rows, date(2025, 11, 28))
    assert model is not None and report["adopted"], report
    assert report["high_precision"] >= 0.75 and report["model_auc"] >= report["rule_auc"]
    from upstream.domain.risk.models import model_from_document, to_document

    assert model_from_document(to_document(model)) == model
    assert report["kind"] in ("logistic", "boosted") and report["boosted"]["auc"] is not None
    thin, why = fit_for_tenant(rows[:50], date(2025, 11, 28))
    assert thin is None and not why["adopted"] and "thin" in why["reason"]
    import random
    from dataclasses import replace

    shuffled = [r.denied for r in rows]  # the same rows with their outcomes shuffled
    random.Random(1).shuffle(shuffled)
    random_rows = [replace(r, denied=d) for r, d in zip(rows, shuffled, strict=True)]
    none, why = fit_for_tenant(random_rows, date(2025, 11, 28))
    assert none is None and "held-out" in why["reason"]


def test_settings_allowing_a_prohibited_action_are_refused_by_the_api() -> None:
    deps, _, tokens = setup()
    status, body = call(deps, "PUT", "/v1/settings", tokens["write"],
                        body={"automation": {"auto_execute": True,
                                             "allowed_actions": ["appeal", "add_modifier"]}})
    assert status == 400 and "cannot be automated: appeal" in body["detail"]
    status, body = call(deps, "PUT", "/v1/settings", tokens["write"],
                        body={"automation": {"auto_execute": True}})
    assert status == 200 and body["automation"]["auto_execute"] is True
    assert body["automation"]["confidence_threshold"] == 95
    assert call(deps, "GET", "/v1/automation/log", tokens["read"])[0] == 400  # not wired here


def test_practice_settings_for_the_checks_are_validated() -> None:
    deps, stores, tokens = setup()
    good = {"providers": {"1234567890": {"credential": "BCBA", "expires": "2026-03-31"}},
            "visit_limits": {"Aetna": 20}, "kx_thresholds": {"2026": 248000},
            "risk_rules": {"modifiers": [{"payer": "Aetna", "cpt": "97110|97112",
                                          "modifiers": "GP"}]}}
    status, body = call(deps, "PUT", "/v1/settings", tokens["write"], body=good)
    assert status == 200 and body["visit_limits"] == {"Aetna": 20}
    providers: Any = stores.tenants["acme"]["providers"]
    assert providers["1234567890"]["expires"] == "2026-03-31"
    for bad in ({"providers": {"12": {"credential": "BCBA"}}},
                {"visit_limits": {"Aetna": 0}}, {"kx_thresholds": {"1999": 1}},
                {"risk_rules": {"modifiers": [{"payer": "Aetna", "cpt": "97110",
                                               "modifiers": "G P"}]}},
                {"risk_rules": {"modifiers": [], "surprise": True}},
                {"esrd_base_rate_cents": -5}):
        assert call(deps, "PUT", "/v1/settings", tokens["write"], body=bad)[0] == 400, bad


@settings(deadline=None, max_examples=40)  # a fit takes tens of ms; the first loads statsmodels
@given(st.lists(st.tuples(st.lists(st.floats(-1e6, 1e6), min_size=8, max_size=8),
                          st.booleans()), min_size=0, max_size=300))
def test_fitting_any_rows_returns_a_finite_model_or_none(rows: list[Any]) -> None:
    model = calibrate.fit([r for r, _ in rows], [d for _, d in rows])
    if model is not None:
        assert 0.0 <= model.probability(rows[0][0]) <= 1.0


def test_a_technician_level_modifier_is_advice_to_confirm_never_automatic() -> None:
    """An RBT on 97153 was told to add HN at 97% confidence (Tier 1). Level modifiers differ
    by state program and plan (HM below bachelor's in many), so without the practice's own
    convention the fix is a review item, whatever the automation settings."""
    from upstream.domain.automation.tiers import (
        ActionType,
        AutomationSettings,
        ProposedAction,
        Tier,
        classify,
    )

    found = score_line(line(cpt="97153", modifiers=[], provider_credential="RBT",
                            diagnosis_codes=["F84.0"]), EMPTY, default_rules())
    (fix,) = found.fixes
    assert fix.detail["one_of"] == ["HM", "HN"] and fix.review is not None
    assert "state" in fix.review and fix.to_json()["review"] == fix.review
    eager = AutomationSettings(auto_execute=True, confidence_threshold=50,
                               dollar_threshold_cents=10_000_000)
    proposal = ProposedAction(customer_id="acme", action_type=ActionType.ADD_MODIFIER,
                              target="claim:C1:1", confidence=100, dollars_cents=100,
                              review_reasons=(fix.review,))
    tier, why = classify(proposal, eager)
    assert tier is Tier.REVIEW and fix.review in why


def test_the_practice_confirms_its_convention_with_a_row_of_its_own_state() -> None:
    rules = with_overrides(default_rules(), {"modifiers": [
        {"payer": "*", "state": "TX", "cpt": "97153", "modifiers": "HM",
         "when_credential": "RBT", "source": "TMPPM ABA handbook, as read by the practice"}]},
        "TX")
    found = score_line(line(cpt="97153", modifiers=[], provider_credential="RBT",
                            diagnosis_codes=["F84.0"]), EMPTY, rules)
    (fix,) = found.fixes
    assert fix.detail["modifier"] == "HM" and fix.review is None and fix.confidence == 97
    # the same row does not apply to a practice in another state
    elsewhere = with_overrides(default_rules(), {"modifiers": [
        {"payer": "*", "state": "TX", "cpt": "97153", "modifiers": "HM",
         "when_credential": "RBT"}]}, "CA")
    assert score_line(line(cpt="97153", modifiers=[], provider_credential="RBT",
                           diagnosis_codes=["F84.0"]), EMPTY, elsewhere).fixes == []


def test_a_national_rule_needs_no_confirmation() -> None:
    found = score_line(line(cpt="97165", modifiers=[]), EMPTY, default_rules())
    (fix,) = found.fixes
    assert fix.detail["modifier"] == "GO" and fix.review is None


def test_every_shipped_modifier_row_names_its_source_and_convention() -> None:
    for rule in default_rules().modifiers:
        assert rule.source and rule.convention in ("national", "varies")
        if rule.convention == "national":
            assert "CMS" in rule.source
        assert rule.state == "*"  # no state-specific row ships unconfirmed (closing note)
