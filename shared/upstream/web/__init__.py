"""Server-rendered HTML for the dashboard: Jinja2 templates shipped in the package, with
autoescaping on for every template, so a payer name or CARC text holding markup is shown as
text. The pages carry no script at all; forms post, the server redirects."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def _environment() -> Environment:
    environment = Environment(loader=PackageLoader("upstream.web", "templates"),
                              autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)
    # One URL path segment: ids from data (an authorization number with a '/') stay one.
    environment.filters["segment"] = lambda value: quote(str(value), safe="")
    environment.globals["pct"] = lambda rate: "–" if rate is None else f"{rate:.1%}"
    environment.globals["money"] = lambda cents: f"${(cents or 0) / 100:,.2f}"
    return environment


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)
