"""What an alert says on each channel: an e-mail (plain text and HTML with the evidence
table), a Slack Block Kit message, a signed JSON webhook.

Everything that came from data (payer names, CARC text, claim ids, titles) is escaped for the
medium it lands in: HTML entities in the e-mail, Slack's three control characters in Slack.
Claim lines show patient keys (HMAC hashes), never names: the evidence holds nothing else.
"""

from __future__ import annotations

import html
import json
from email.message import EmailMessage
from typing import Any

from upstream.domain.notify import words
from upstream.domain.webhooks import sign_timestamped

# An affected line: claim id and line are the handle staff look it up by.
LINE_COLUMNS = (("Claim", "claim_id"), ("Line", "line"), ("Patient", "patient_key"),
                ("CPT", "cpt"), ("Reasons", "carc_codes"), ("Billed", "billed_cents"),
                ("Service date", "service_date"), ("Outcome", "outcome"))
AUTH_ROWS = (("Authorization", "authorization_number"), ("Payer", "payer"),
             ("Expires", "end_date"), ("Units used", "units_used"),
             ("Units authorized", "units_authorized"),
             ("Re-authorization deadline", "reauth_deadline"),
             ("Revenue at risk ($)", "revenue_at_risk_dollars"))
SLACK_TEXT_LIMIT = 2900  # Block Kit section text is capped at 3,000 characters


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value)
    return "" if value is None else str(value)


def _format(key: str, value: Any) -> str:
    """Rates as percentages and money as dollars: what a billing manager reads."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _show(value)
    if key.endswith("rate") and 0 <= value <= 1:
        return f"{value:.1%}"
    if key.endswith("_cents"):
        return f"${value / 100:,.2f}"
    if key.endswith("dollars") or key.endswith("$ denied"):
        return f"${value:,.2f}"
    return _show(value)


def metric_rows(alert: dict[str, Any]) -> list[tuple[str, str]]:
    """The key figures in words (`words.LABELS`); internal numbers stay in the JSON."""
    return words.key_figures(alert)


def _line_cell(key: str, value: Any) -> str:
    if key == "patient_key":
        return words.short_patient_key(value)
    return _format(key, value)


def _evidence(alert: dict[str, Any]) -> dict[str, Any]:
    evidence = alert.get("evidence")
    return evidence if isinstance(evidence, dict) else {}


def authorization_rows(alert: dict[str, Any]) -> list[tuple[str, str]]:
    facts = {**(_evidence(alert).get("authorization") or {}), **(alert.get("metrics") or {})}
    if "authorization_number" not in facts:
        return []
    return [(label, _show(facts.get(key))) for label, key in AUTH_ROWS]


def alert_link(dashboard_url: str, alert: dict[str, Any]) -> str:
    return f"{dashboard_url.rstrip('/')}/alerts/{alert.get('alert_id', '')}"


def subject(alert: dict[str, Any]) -> str:
    """One line whatever the data holds: a line break in a header would inject headers."""
    text = f"[Upstream] {alert.get('severity', '')} — {alert.get('title', 'Alert')}"
    return " ".join(text.split())[:200]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}</table>"


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["  " + " | ".join(headers)] + ["  " + " | ".join(r) for r in rows])


def sections(alert: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, columns, rows) of the evidence, the same in text and HTML."""
    evidence = _evidence(alert)
    found: list[tuple[str, list[str], list[list[str]]]] = []
    auth = authorization_rows(alert)
    if auth:
        found.append(("Authorization", ["", ""], [[k, v] for k, v in auth]))
    figures = metric_rows(alert)
    if figures:
        found.append(("Key figures", ["", ""], [[k, v] for k, v in figures]))
    if evidence.get("top_cpt"):
        found.append(("Codes with the most denials",
                      ["CPT", "denied", "decided", "denial rate", "before"],
                      [[_format(k, c.get(k)) for k in ("cpt", "denied", "decided", "rate",
                                                       "baseline_rate")]
                       for c in evidence["top_cpt"]]))
    if evidence.get("top_carc"):
        found.append(("Top denial reasons", ["code", "meaning", "lines", "$ denied"],
                      [[_format(k, c.get(k))
                        for k in ("code", "meaning", "denied", "denied_dollars")]
                       for c in evidence["top_carc"]]))
    also = [a for a in evidence.get("also_found") or [] if isinstance(a, dict)]
    if also:
        found.append(("Also seen by another check", ["", ""],
                      [[str(a.get("title", "")), ""] for a in also]))
    lines = evidence.get("affected_lines") or []
    if lines:
        total = evidence.get("affected_lines_total", len(lines))
        found.append((f"Affected claim lines ({len(lines)} of {total})",
                      [label for label, _ in LINE_COLUMNS],
                      [[_line_cell(k, line.get(k)) for _, k in LINE_COLUMNS] for line in lines]))
    return found


CHART_CID = "trend@upstream"


def email_message(alert: dict[str, Any], sender: str, recipients: list[str],
                  dashboard_url: str, practice: str,
                  chart_png: bytes | None = None) -> EmailMessage:
    link = alert_link(dashboard_url, alert)
    actions = [str(a) for a in alert.get("recommended_actions") or []]
    parts = sections(alert)
    happened, stake = words.lead(alert), words.stake_sentence(alert)
    text = "\n\n".join([
        f"{alert.get('title', '')}",
        " ".join(filter(None, [happened, stake])),
        "What to do:\n" + "\n".join(f"- {a}" for a in actions),
        f"Open it in Upstream: {link}",
        "EVIDENCE",
        f"{alert.get('summary', '')}",
        *[f"{heading}\n{_text_table(cols, rows)}" for heading, cols, rows in parts],
        f"{practice} · alert {alert.get('alert_id', '')}"])
    body = "".join([
        f"<h2>{html.escape(str(alert.get('title', '')))}</h2>",
        f"<p><b>{html.escape(happened)}</b>"
        + (f" {html.escape(stake)}" if stake else "") + "</p>",
        "<h3>What to do</h3><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in actions)
        + "</ul>",
        f"<p><a href='{html.escape(link, quote=True)}'>Open it in Upstream</a></p>",
        "<h3>Evidence</h3>",
        f"<p>{html.escape(str(alert.get('summary', '')))}</p>",
        (f"<p><img src='cid:{CHART_CID}' width='520' height='200' alt='Weekly denial rate of "
         f"{html.escape(str(alert.get('payer') or ''), quote=True)} against its baseline "
         "band'></p>") if chart_png else "",
        *[f"<h4>{html.escape(heading)}</h4>{_table(cols, rows)}" for heading, cols, rows in parts],
        f"<p style='color:#666'>{html.escape(practice)}</p>"])
    message = EmailMessage()
    message["Subject"] = subject(alert)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    if chart_png:
        html_part = message.get_body(("html",))
        assert html_part is not None
        html_part.add_related(chart_png, maintype="image", subtype="png",
                              cid=f"<{CHART_CID}>", filename="trend.png")
    return message


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters (api.slack.com "Formatting text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: dict[str, Any], dashboard_url: str) -> dict[str, Any]:
    title = str(alert.get("title", "Alert"))[:140]
    metrics = metric_rows(alert)[:8]
    carcs = _evidence(alert).get("top_carc") or []
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(
            f"*{alert.get('severity', '')}* · {alert.get('payer') or ''}\n"
            + " ".join(filter(None, [words.lead(alert), words.stake_sentence(alert)]))
            + "".join(f"\n• {a}" for a in (alert.get("recommended_actions") or [])[:3])
        )[:SLACK_TEXT_LIMIT]}},
    ]
    if metrics:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": slack_escape(f"*{k}*\n{v}")[:1900]} for k, v in metrics]})
    if carcs:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(
            "; ".join(f"{c.get('code')}: {c.get('meaning')}" for c in carcs))[:SLACK_TEXT_LIMIT]}]})
    blocks.append({"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "Open in Upstream"},
        "url": alert_link(dashboard_url, alert)}]})
    return {"text": slack_escape(f"{alert.get('severity', '')}: {title}"), "blocks": blocks}


def webhook_request(alert: dict[str, Any], secret: bytes, timestamp: str,
                    ) -> tuple[bytes, dict[str, str]]:
    """The alert as Contract 4 JSON, signed like the inbound generic webhook."""
    body = json.dumps(alert, sort_keys=True, default=str).encode()
    return body, {"Content-Type": "application/json", "X-Timestamp": timestamp,
                  "X-Upstream-Alert-Id": str(alert.get("alert_id", "")),
                  "X-Signature": sign_timestamped(body, timestamp, secret)}


def digest_email(entries: list[dict[str, Any]], sender: str, recipients: list[str],
                 dashboard_url: str, practice: str, day: str,
                 first_run: bool = False) -> EmailMessage:
    """One message for the alerts held for a digest channel (or by quiet hours), or the
    summary of the first run over a practice's history."""
    rows = [[_show(e.get("severity")), _show(e.get("title")), _show(e.get("payer")),
             alert_link(dashboard_url, e)] for e in entries]
    name = (f"First look at your history: {len(entries)} things to act on" if first_run
            else f"Daily digest {day}: {len(entries)} alerts")
    lead = (f"Upstream read your practice's history and found {len(entries)} things to act "
            "on, most urgent first. From now on each new one is told as it happens."
            if first_run else f"{len(entries)} alerts since the last digest.")
    message = EmailMessage()
    message["Subject"] = " ".join(f"[Upstream] {name} for {practice}".split())[:200]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(f"{lead}\n\n"
                        + _text_table(["severity", "alert", "payer", "link"], rows))
    message.add_alternative(
        f"<html><body><h2>{html.escape(lead)}</h2>"
        + _table(["severity", "alert", "payer", "link"], rows) + "</body></html>",
        subtype="html")
    return message


def digest_slack(entries: list[dict[str, Any]], dashboard_url: str, day: str) -> dict[str, Any]:
    lines = [slack_escape(f"• *{e.get('severity', '')}* {e.get('title', '')}")
             + f" (<{alert_link(dashboard_url, e)}|open>)" for e in entries]
    text = "\n".join(lines)[:SLACK_TEXT_LIMIT]
    return {"text": f"Upstream daily digest {day}: {len(entries)} alerts", "blocks": [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": f"Daily digest {day}: {len(entries)} alerts"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text or "No alerts."}}]}
