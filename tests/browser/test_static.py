"""Static checks of web/: what the CSP forbids is not in the files at all, and nothing comes from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
HTML = sorted(WEB.rglob("*.html"))
JS = sorted(WEB.rglob("*.js"))
CSS = sorted(WEB.rglob("*.css"))
# Namespace identifiers are names, not fetched URLs.
URL_OK = {"http://www.w3.org/2000/svg"}


def test_web_has_the_app() -> None:
    assert (WEB / "index.html").is_file()
    assert JS and CSS


@pytest.mark.parametrize("path", HTML, ids=lambda p: p.name)
def test_html_has_no_inline_script_or_style(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script> (the CSP blocks it)"
    assert "<style" not in text, "<style> block (the CSP blocks it)"
    assert not re.search(r"\sstyle=", text), "style attribute (the CSP blocks it)"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler (the CSP blocks it)"


@pytest.mark.parametrize("path", HTML + JS + CSS, ids=lambda p: p.name)
def test_nothing_loads_from_other_hosts(path: Path) -> None:
    urls = set(re.findall(r"https?://[^\s'\"`)<>]+", path.read_text())) - URL_OK
    assert not urls, f"external URLs: {sorted(urls)}"


@pytest.mark.parametrize("path", JS, ids=lambda p: p.name)
def test_scripts_avoid_unsafe_sinks_and_local_storage(path: Path) -> None:
    # Code only: comments may name what the code avoids.
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{sink}: build DOM nodes and set textContent instead"
    assert "localStorage" not in text, "tokens go in memory or sessionStorage, never localStorage"
    assert ".style." not in text and "setAttribute('style'" not in text, "style belongs in app.css"
