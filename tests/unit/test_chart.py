"""The alert e-mail's trend chart (pure)."""

from __future__ import annotations

import io
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.unit.test_notify import alert
from upstream.domain.aggregates import DailyCell
from upstream.domain.notify.chart import baseline_rate, render_png, weekly_points
from upstream.domain.notify.render import email_message

END = date(2026, 1, 5)


def cells(last_week_denied: int = 6) -> list[DailyCell]:
    found = []
    for back in range(1, 92):
        day = END - timedelta(days=back)
        denied = last_week_denied if back <= 7 else 1
        found.append(DailyCell("Aetna", day, {"decided": 10, "denied": denied}))
        found.append(DailyCell("Cigna", day, {"decided": 10, "denied": 9}))  # not this payer
    return found


def test_weeks_are_pooled_per_payer_and_the_last_week_stands_out() -> None:
    points = weekly_points(cells(), "Aetna", END)
    assert len(points) == 13 and points[-1].start == END - timedelta(days=7)
    assert [p.decided for p in points] == [70.0] * 13
    assert points[-1].rate == 0.6 and baseline_rate(points) == 0.1


def test_the_png_is_a_small_image_and_nothing_to_draw_is_none() -> None:
    png = render_png(weekly_points(cells(), "Aetna", END))
    assert png is not None and png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (520, 200) and len(png) < 20_000
    assert render_png(weekly_points([], "Aetna", END)) is None


def test_the_email_embeds_the_chart_inline() -> None:
    png = render_png(weekly_points(cells(), "Aetna", END))
    message = email_message(alert(payer="Aetna"), "a@u.test", ["b@example.com"], "https://u",
                            "P", png)
    kinds = [part.get_content_type() for part in message.walk()]
    assert "image/png" in kinds and "multipart/related" in kinds
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "cid:trend@upstream" in html


@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 50), st.integers(0, 60)),
                max_size=60))
def test_any_history_draws_or_declines(raw: list[tuple[int, int, int]]) -> None:
    history = [DailyCell("Aetna", END - timedelta(days=back), {"decided": n, "denied": min(n, x)})
               for back, n, x in raw]
    png = render_png(weekly_points(history, "Aetna", END))
    assert png is None or png.startswith(b"\x89PNG")


def test_a_denial_alert_email_from_the_dispatcher_carries_the_chart() -> None:
    import json
    from dataclasses import replace
    from typing import Any

    from tests.unit.test_detector_runs import Event
    from tests.unit.test_dispatch_alerts import deps
    from upstream.services.dispatch_alerts import handle_alert_event

    class Sources:
        def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
            return cells()

        def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]:
            return []

        def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
            return []

    d, _, smtp, _, _, _ = deps()
    d = replace(d, weekly=Sources())
    denial = alert(payer="Aetna", window={"current_end": "2026-01-04"})
    handle_alert_event(Event(json.dumps(denial).encode()), d)
    assert "image/png" in [part.get_content_type() for part in smtp.sent[0].walk()]
    auth = alert(alert_id="au1", type="auth_expiring", payer="Aetna")
    handle_alert_event(Event(json.dumps(auth).encode()), d)
    assert "image/png" not in [part.get_content_type() for part in smtp.sent[-1].walk()]
