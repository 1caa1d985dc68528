"""Risk score benchmark (`make bench-risk`): a year of simulated claim lines whose denials
have known drivers (a missing therapy modifier, imaging without its prior authorization, a
diagnosis that does not fit, a payer×CPT hot spot) on top of a background rate.

Each line is scored with the history known on its submission day (lines decided before it).
The calibrated logistic and the boosted trees are fitted on months 1–9 (the trees with
rolling-origin folds on months 7, 8 and 9 choosing their size) and judged on months 10–12;
the rule score is judged on the same months. Prints AUC, the HIGH band's precision (share of
lines scored ≥ 70 that were denied) and calibration (Brier, expected calibration error) for
all three, and the rule score's latency per line in-process (p50/p99)
and peak memory; then the HTTP check (`POST /v1/risk/score`) on a local stack of its own,
200 sequential requests of a 3-line claim (p50/p99). `--no-stack` skips the stack part.
Goals: HIGH precision ≥ 75%, < 1 ms per line, HTTP p99 < 100 ms. Asserts nothing.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from upstream.domain.aggregates import cells_from_documents
from upstream.domain.risk import boosted, calibrate
from upstream.domain.risk.rules import default_rules
from upstream.domain.risk.score import DenialHistory, score_line

START, DAYS, PER_DAY, SEED = date(2025, 1, 1), 365, 60, 11
PAYERS = ("Aetna", "Cigna", "UnitedHealthcare", "Medicaid", "Blue Cross Blue Shield of Texas")
# (cpt, usual modifier, usual diagnosis): ABA, PT, imaging
SERVICES = (("97153", "HN", "F84.0"), ("97155", "HO", "F84.0"), ("97110", "GP", "M54.50"),
            ("97140", "GP", "M54.50"), ("72148", "", "M51.16"), ("70551", "", "G43.909"))
BACKGROUND = 0.05
HOT_SPOT, HOT_RATE = ("Cigna", "97155"), 0.45
MISSING_MODIFIER_SHARE, MISSING_MODIFIER_RATE = 0.12, 0.85
NO_AUTH_SHARE, NO_AUTH_RATE = 0.15, 0.9
WRONG_DX_SHARE, WRONG_DX_RATE = 0.05, 0.6


def simulate() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    lines = []
    for day in range(DAYS):
        service = START + timedelta(days=day)
        for n in range(PER_DAY):
            payer = rng.choice(PAYERS)
            cpt, modifier, dx = rng.choice(SERVICES)
            p = HOT_RATE if (payer, cpt) == HOT_SPOT else BACKGROUND
            modifiers = [modifier] if modifier else []
            if cpt in ("97110", "97140") and rng.random() < MISSING_MODIFIER_SHARE:
                modifiers, p = [], max(p, MISSING_MODIFIER_RATE)
            auth: str | None = f"AUTH-{day}-{n}"
            if cpt in ("72148", "70551") and payer != "Medicaid" \
                    and rng.random() < NO_AUTH_SHARE:
                auth, p = None, max(p, NO_AUTH_RATE)
            if rng.random() < WRONG_DX_SHARE:
                dx, p = "Z00.00", max(p, WRONG_DX_RATE)
            denied = rng.random() < p
            submitted = service + timedelta(days=rng.randint(1, 5))
            lines.append({
                "claim_id": f"C{day}-{n}", "line": 1, "payer": payer, "cpt": cpt,
                "modifiers": modifiers, "diagnosis_codes": [dx], "service_date": service,
                "submitted_date": submitted.isoformat(), "authorization_number": auth,
                "decided_date": (submitted + timedelta(days=rng.randint(10, 35))).isoformat(),
                "outcome": "DENIED" if denied else "PAID", "billed_cents": 15000,
                "paid_cents": 0 if denied else 9000})
    return lines


def main() -> None:
    lines = simulate()
    cells = cells_from_documents(lines)
    rules = default_rules()
    auths = [{"authorization_number": line["authorization_number"],
              "start_date": line["service_date"] - timedelta(days=30),
              "end_date": line["service_date"] + timedelta(days=30)}
             for line in lines if line["authorization_number"]]
    by_number = {a["authorization_number"]: a for a in auths}
    histories: dict[date, DenialHistory] = {}
    scored = []
    for line in lines:
        as_of = date.fromisoformat(line["submitted_date"])
        if as_of not in histories:
            histories[as_of] = DenialHistory.from_cells(cells, as_of)
        number = line["authorization_number"]
        found = score_line(line, histories[as_of], rules,
                           [by_number[number]] if number else [])
        scored.append((line, found))
    split = date(2025, 10, 1)
    trained = [(ln, s) for ln, s in scored if ln["service_date"] < split]
    train = [(calibrate.features(s.factors), ln["outcome"] == "DENIED") for ln, s in trained]
    test = [(ln, s) for ln, s in scored if ln["service_date"] >= split]
    model = calibrate.fit([r for r, _ in train], [d for _, d in train])
    started = time.perf_counter()
    trees = boosted.fit([r for r, _ in train], [(ln["payer"], ln["cpt"]) for ln, _ in trained],
                        [d for _, d in train],
                        [date.fromisoformat(ln["submitted_date"]) for ln, _ in trained])
    fit_seconds = time.perf_counter() - started
    denied = [ln["outcome"] == "DENIED" for ln, _ in test]
    rule_scores = [float(s.score) for _, s in test]
    print(f"simulated lines: {len(lines)} ({sum(ln['outcome'] == 'DENIED' for ln in lines)} "
          f"denied); trained on {len(train)} (months 1-9), judged on {len(test)} (10-12)")
    if trees:
        print(f"boosted: {trees.rounds} trees (median best iteration of rolling-origin folds "
              f"on months 7, 8, 9: fold AUCs {', '.join(f'{a:.3f}' for a in trees.cv_auc)}); "
              f"fitted in {fit_seconds:.1f} s")
    for name, values in (("rule score", rule_scores),
                         ("calibrated", [float(model.rescore(s).score) for _, s in test]
                          if model else None),
                         ("boosted", [float(trees.rescore(s, ln).score) for ln, s in test]
                          if trees else None)):
        if values is None:
            print(f"{name:11s}: history too thin to fit")
            continue
        precision, high = calibrate.band_precision(values, denied)
        area = calibrate.auc(values, denied)
        shown = "n/a" if precision is None else f"{precision:.1%}"
        brier, ece = calibration(values, denied)
        print(f"{name:11s}: AUC {area:.3f}  HIGH (>= 70) lines {high:5d}  precision {shown}  "
              f"Brier {brier:.4f}  calibration error {ece:.3f}")
    if trees:
        example = next(trees.rescore(s, ln) for ln, s in test
                       if trees.rescore(s, ln).category == "HIGH")
        print(f"a HIGH line's reasons (boosted): {'; '.join(example.reasons)}")
    if model:
        weights = ", ".join(f"{n} {w:+.2f}" for n, w in zip(calibrate.FEATURES, model.weights,
                                                             strict=True))
        print(f"calibrated weights (log-odds per unit): intercept {model.intercept:+.2f}, "
              f"{weights}")
    history = histories[max(histories)]
    sample = [ln for ln, _ in test[:2000]]
    timings = []
    tracemalloc.start()
    for line in sample:
        started = time.perf_counter()
        score_line(line, history, rules, [])
        timings.append((time.perf_counter() - started) * 1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    timings.sort()
    print(f"rule score in-process: p50 {statistics.median(timings):.3f} ms, "
          f"p99 {timings[int(len(timings) * 0.99)]:.3f} ms per line "
          f"({len(timings) / (sum(timings) / 1000):,.0f} lines/s); peak memory "
          f"{peak / 1e6:.1f} MB while scoring")



def calibration(scores: list[float], denied: list[bool]) -> tuple[float, float]:
    """Brier score of score/100 as a probability, and the expected calibration error over ten
    equal-width bands (Naeini et al. 2015): the line-weighted gap between each band's mean
    predicted and observed denial rate."""
    p = [s / 100 for s in scores]
    brier = statistics.fmean((q - d) ** 2 for q, d in zip(p, denied, strict=True))
    bands: dict[int, list[tuple[float, bool]]] = {}
    for q, d in zip(p, denied, strict=True):
        bands.setdefault(min(9, int(q * 10)), []).append((q, d))
    ece = sum(len(b) * abs(statistics.fmean(q for q, _ in b) - statistics.fmean(d for _, d in b))
              for b in bands.values()) / len(p)
    return brier, ece


def http_check(requests_count: int = 200) -> None:
    """The pre-submission check through the api function, Firestore emulator behind it."""
    import requests

    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.adapters.firestore_api_keys import FirestoreApiKeys
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.domain.aggregates import line_changes
    from upstream.domain.api_keys import new_key
    from upstream.stack import manager
    from upstream.stack.config import StackConfig

    config = StackConfig(project="upstream-bench-risk",
                         data_dir=Path(tempfile.mkdtemp(prefix="upstream-risk-")),
                         firestore_port=28881, pubsub_port=28882, storage_port=28883,
                         functions_base_port=28890, athena_port=28889, smtp_port=28888)
    os.environ.update(config.emulator_env())
    try:
        manager.up(config)
        db = firestore_client()
        FirestoreTenants(db).upsert("bench", {"name": "bench"})
        history = [{**line, "customer_id": "bench",
                    "updated_at": datetime(2025, 12, 1, tzinfo=UTC)}
                   for line in simulate()[-3000:]]
        FirestoreAggregates(db).apply("bench", line_changes(
            (f"l{i}", str(i), doc) for i, doc in enumerate(history)))
        key = new_key()
        FirestoreApiKeys(db).create(key.key_id, "bench", key.secret_hash, ["read"], "bench",
                                    datetime.now(UTC), None)
        url = manager.function_urls(config)["api"].rstrip("/") + "/v1/risk/score"
        claim: dict[str, Any] = {"payer": "Cigna", "lines": [
            {"cpt": "97110", "units": 2, "minutes": 30, "diagnosis_codes": ["M54.50"]},
            {"cpt": "72148", "diagnosis_codes": ["M51.16"], "billed_dollars": "950.00"},
            {"cpt": "97155", "modifiers": ["HO"], "diagnosis_codes": ["F84.0"]}]}
        headers = {"Authorization": f"Bearer {key.token}"}
        session = requests.Session()
        for _ in range(5):  # warm: the instance's first call loads the history
            session.post(url, json=claim, headers=headers, timeout=30).raise_for_status()
        timings = []
        for _ in range(requests_count):
            started = time.perf_counter()
            session.post(url, json=claim, headers=headers, timeout=30).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"HTTP check on the local stack ({requests_count} requests, 3-line claim): "
              f"p50 {statistics.median(timings):.1f} ms, "
              f"p99 {timings[int(len(timings) * 0.99) - 1]:.1f} ms, "
              f"max {timings[-1]:.1f} ms")
    finally:
        manager.down(config)


if __name__ == "__main__":
    main()
    if "--no-stack" not in sys.argv:
        http_check()
