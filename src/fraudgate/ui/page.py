"""The dashboard page: one self-contained HTML document (inline CSS, JS and SVG, no fetch but
its own API), assembled once from the package's ``dashboard.html``, ``.css`` and ``.js``.

`page()` is the document served at ``/ui``; `PAGE_HEADERS` go with it: a Content-Security-Policy
that lets the browser run only this page's own inline script and style (by their SHA-256) and
connect only to the server it came from, so the page cannot load or send anything elsewhere.
The page holds no figures: it asks for the admin token and reads ``/ui/api/dashboard`` with it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

_STYLE_SLOT = "/* dashboard.css */"
_SCRIPT_SLOT = "/* dashboard.js */"


@dataclass(frozen=True, slots=True)
class Page:
    """The assembled document and the headers it is served with."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _read(name: str) -> str:
    return files("fraudgate.ui").joinpath(name).read_text(encoding="utf-8")


@cache
def page() -> Page:
    """The page and its headers (read from the package once per process)."""
    template, style, script = (
        _read("dashboard.html"),
        _read("dashboard.css"),
        _read("dashboard.js"),
    )
    if template.count(_STYLE_SLOT) != 1 or template.count(_SCRIPT_SLOT) != 1:
        raise RuntimeError(
            f"dashboard.html: expected one {_STYLE_SLOT!r} and one {_SCRIPT_SLOT!r} slot"
        )
    html = template.replace(_STYLE_SLOT, style).replace(_SCRIPT_SLOT, script)
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src '{_sha256(script)}'",
            f"style-src '{_sha256(style)}'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = (
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    )
    return Page(html.encode(), headers)
