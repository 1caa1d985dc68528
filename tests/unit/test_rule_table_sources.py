"""Every amount in a rule table agrees with the figure its cited source states: the CY2024
ESRD base rate was once stored as $271.18 beside a source that says $271.02."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

import upstream.domain.specialty as specialty

DATA = Path(specialty.__file__).with_name("data")


@pytest.mark.parametrize("name, column", [("esrd_base_rates.csv", "base_rate_cents"),
                                          ("kx_thresholds.csv", "threshold_cents")])
def test_each_amount_is_the_dollar_figure_its_source_quotes(name: str, column: str) -> None:
    with (DATA / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:
        quoted = re.search(r"\$([\d,]+(?:\.\d\d)?)", row["source"])
        assert quoted, row
        cents = round(float(quoted[1].replace(",", "")) * 100)
        assert int(row[column]) == cents, row
        assert f"CY{row['year']}" in row["source"], row
