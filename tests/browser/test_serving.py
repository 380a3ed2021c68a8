"""`streamlit run app.py` sends Streamlit's frontend bundle compressed (flux_ui/serving.py)."""

from __future__ import annotations

import re

import httpx


def test_a_first_visit_gets_the_frontend_bundle_gzipped(app_server):
    server = app_server()
    index = httpx.get(f"{server.url}/history").text
    [script] = re.findall(r'src="\.?/?(static/js/index\.[^"]+\.js)"', index)
    plain = httpx.get(f"{server.url}/{script}", headers={"accept-encoding": "identity"})
    packed = httpx.get(f"{server.url}/{script}", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip" and packed.content == plain.content
    assert packed.num_bytes_downloaded < len(plain.content) / 2
