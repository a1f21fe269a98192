"""The atlas's part of the inspect page: search by dragging over the text, in headless
Chromium (skipped where none is installed), and the static sections."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from test_html import browser, fake_acts, meta, open_in_browser, page_data

from charrnn.inspect import html as page
from charrnn.inspect.stats import saturation

TEXT = "the cat sat. a cat ran. my cat. the dog sat."


def planted():
    """Activations where h unit 3 of layer 1 is on exactly at the letters of 'cat' and every
    other h unit stays off: selecting one 'cat' must find the two others."""
    acts = fake_acts(TEXT)
    h = np.full_like(acts.signals["h"], -0.8)
    for m in re.finditer("cat", TEXT):
        h[1, m.start() : m.end(), 3] = 0.9
    acts.signals["h"][...] = h
    return acts


def test_the_page_has_a_search_panel_and_its_settings():
    acts = planted()
    doc = page.render(acts, meta(what="h", layer=1, unit=3), saturation(acts), search_defaults=("h", 0.4, 1))
    data = page_data(doc)
    assert data["search"] == {"what": "h", "threshold": 0.4, "margin": 1}
    assert 'id="search-threshold" type="number" step="0.05" value="0.4"' in doc and 'id="search-margin"' in doc


@pytest.mark.skipif(browser() is None, reason="no Chromium or Chrome installed (apt-get install chromium) to open the page in")
def test_dragging_over_a_span_lists_the_other_places(tmp_path):
    acts = planted()
    doc = page.render(acts, meta(what="h", layer=1, unit=3), saturation(acts), search_defaults=("h", 0.3, 1))
    (tmp_path / "page.html").write_text(doc, encoding="utf-8")
    first = TEXT.index("cat")
    dom = open_in_browser(tmp_path / "page.html", f"selftest&select={first}:{first + 3}", tmp_path)
    m = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert m and m.group(1), dom[-3000:]
    result = json.loads(html.unescape(m.group(1)))
    assert result["errors"] == [] and result["ok"], result
    others = [[x.start(), x.end()] for x in re.finditer("cat", TEXT)][1:]
    assert result["search"]["matches"] == others, result["search"]
    assert "1 units of h" in result["search"]["status"] and "1:3" in result["search"]["status"]
    assert result["search"]["marked"] == 3  # the first match, clicked, is outlined in the text
