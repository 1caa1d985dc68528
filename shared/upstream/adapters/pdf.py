"""HTML → PDF with WeasyPrint (a maintained renderer of HTML and CSS for print), for the
one-page alert report a biller takes into a payer call.

The page is our own template, yet it prints text a payer or an export chose (payer names,
CARC texts): nothing is fetched while rendering. Images come inline as `data:` URIs; any
other URL, a `file:` path included, is refused, so no template mistake can make the renderer
read a local file or call out.
"""

from __future__ import annotations

from weasyprint import HTML
from weasyprint.urls import URLFetcher

# WeasyPrint's own fetcher, limited to inline `data:` resources (no file, http or ftp).
INLINE_ONLY = URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def html_to_pdf(html: str) -> bytes:
    rendered: bytes = HTML(string=html, url_fetcher=INLINE_ONLY, base_url=None).write_pdf()
    return rendered
