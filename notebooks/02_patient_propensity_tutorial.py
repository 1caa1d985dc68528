# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Patient responsibility: who will owe, and how much
#
# A practice's cash depends on what patients owe (deductibles, coinsurance, copays: the `PR`
# group codes) as much as on payers. This tutorial estimates, per payer and plan type, the
# propensity of a paid line to leave the patient a share, and the size of that share, on
# the sample practice; then shows where the same amounts sit in Medicare claims, using the
# CMS DE-SynPUF carrier-claim layout (`../shared/data/de-synpuf-ohdsi-etl-cms`, a schema
# fixture of a few rows, not a sample to learn from).
#
# Patient identifiers never appear: the sample's ids are synthetic, and every figure below
# is an aggregate.

# %%
import csv
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import statsmodels.api as sm

from upstream.domain.codes.catalogue import explain
from upstream.domain.sample import generate

data = generate(date(2025, 1, 1), date(2025, 12, 31), lines_per_day=60, seed=7)
paid = [c for c in data.claims if c["outcome"] in ("PAID", "PARTIAL")]
print(f"{len(paid):,} paid lines")
for code in ("PR-1", "PR-2", "PR-3"):
    print(code, "-", explain(code)["meaning"])

# %% [markdown]
# ## 1. How often a paid line leaves the patient a share
#
# A line carries a patient share when its remittance has a `PR` adjustment. By payer:

# %%
share = defaultdict(lambda: [0, 0])
for line in paid:
    owes = any(code.startswith("PR-") for code in line["carc_codes"])
    share[line["payer"]][0] += owes
    share[line["payer"]][1] += 1
rates = sorted(((k / n, payer, n) for payer, (k, n) in share.items()), reverse=True)
fig, ax = plt.subplots(figsize=(7, 4))
ax.barh([p for _, p, _ in rates], [r for r, _, _ in rates])
ax.set_xlabel("share of paid lines with a patient balance")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. A propensity model
#
# Logistic regression of "the line leaves a patient balance" on plan type and the line's
# allowed amount (log): the question a front desk asks before the visit. Plan types with few
# lines are pooled.

# %%
plans = sorted({line["plan_type"] for line in paid})
x = np.array([[1.0, np.log(max(line["allowed_cents"], 100) / 100)]
              + [1.0 if line["plan_type"] == plan else 0.0 for plan in plans[1:]]
              for line in paid])
y = np.array([any(c.startswith("PR-") for c in line["carc_codes"]) for line in paid], float)
model = sm.GLM(y, x, family=sm.families.Binomial()).fit()
names = ["intercept", "log allowed $", *(f"plan: {p}" for p in plans[1:])]
for name, coefficient, p in zip(names, model.params, model.pvalues, strict=True):
    print(f"{name:28} {coefficient:+.3f}  (p = {p:.3f})")

# %% [markdown]
# In this sample the patient share is drawn the same way for every payer, and the model
# agrees: no plan type and no amount moves the odds much. On a real practice's lines the
# same cell shows which plans leave balances worth collecting at the desk.

# %%
predicted = model.predict(x)
bands = np.linspace(0, max(0.3, predicted.max()), 7)
index = np.digitize(predicted, bands)
observed = [y[index == i].mean() if (index == i).any() else np.nan
            for i in range(1, len(bands))]
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(bands[:-1], observed, marker="o", label="observed")
ax.plot([0, bands[-1]], [0, bands[-1]], linestyle="--", color="grey", label="perfect")
ax.set_xlabel("predicted propensity")
ax.set_ylabel("observed share")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. How much: the share's size
#
# Among lines with a balance, the patient's share of the allowed amount:

# %%
shares = [(line["allowed_cents"] - line["paid_cents"]) / line["allowed_cents"]
          for line in paid if line["outcome"] == "PARTIAL" and line["allowed_cents"]]
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(shares, bins=20)
ax.set_xlabel("patient share of the allowed amount")
fig.tight_layout()
plt.show()
print(f"median share {np.median(shares):.0%}, expected patient dollars per 100 paid lines: "
      f"${sum(line['allowed_cents'] - line['paid_cents'] for line in paid) / len(paid):,.0f}")

# %% [markdown]
# ## 4. Where the same amounts sit in Medicare claims (DE-SynPUF layout)
#
# CMS's synthetic public-use files carry, per carrier-claim line, the allowed amount, the
# Part B deductible and the coinsurance (`LINE_ALOWD_CHRG_AMT_n`, `LINE_BENE_PTB_DDCTBL_AMT_n`,
# `LINE_COINSRNC_AMT_n`): the patient-responsibility split the model above needs. The shared
# folder holds a schema fixture of a few rows, read here only to show the mapping.

# %%
folder = Path.cwd().parent.parent / "shared" / "data" / "de-synpuf-ohdsi-etl-cms"
rows = []
for path in sorted(folder.glob("DE1_0_2008_to_2010_Carrier_Claims_Sample_0*.csv")):
    with path.open(encoding="utf-8") as stream:
        rows += list(csv.DictReader(stream))
lines = []
for row in rows:
    for n in range(1, 14):
        allowed = float(row.get(f"LINE_ALOWD_CHRG_AMT_{n}") or 0)
        if allowed:
            patient = (float(row.get(f"LINE_BENE_PTB_DDCTBL_AMT_{n}") or 0)
                       + float(row.get(f"LINE_COINSRNC_AMT_{n}") or 0))
            lines.append((row.get(f"HCPCS_CD_{n}"), allowed, patient))
print(f"{len(rows)} carrier claims, {len(lines)} lines with an allowed amount")
for code, allowed, patient in lines[:10]:
    print(f"  HCPCS {code}: allowed ${allowed:,.2f}, patient ${patient:,.2f} "
          f"({patient / allowed:.0%})")
