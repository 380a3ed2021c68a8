"""Stored pictures on a page, from the app's own routes: every thumbnail from
``/_flux/thumbs/<hash>.jpg`` and every full image from ``/_flux/images/<hash>.png|jpg`` (serving.py),
immutable, so a browser fetches each picture once and a revisit sends URLs, not pictures.

``st.image`` of a file path hands the browser a fresh ``/media/`` URL of Streamlit's, which a browser
fetches again on every visit; ``st.image`` of a URL draws an ``<img>`` of that URL. It takes only an
absolute URL (http, https), so the routes' relative URLs (``serving.thumbnail_url``, the ones the
History gallery uses) are made absolute against the app's address as the browser sees it: the
page's address (``st.context.url``) less the page's own path, which the router records for every run
(``remember_root``). A client that reports no address gets the file through ``/media/`` as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import streamlit as st

from flux_ui import serving

ROOT_KEY = "pictures_app_root"  # session state: the app's address as this browser sees it


def app_root(page_url: str | None, page_path: str) -> str | None:
    """The app's own address, ending in "/", from the page's address as the browser reports it
    (without its query) and the page's path within the app ("" for the default page); None when the
    browser reported none."""
    if not page_url:
        return None
    url = page_url.rstrip("/")
    if page_path and url.endswith("/" + page_path):
        url = url[: -len(page_path) - 1]
    return url + "/"


def remember_root(page_path: str) -> None:
    """Record the app's address for this run's pictures (the router calls it, knowing the page)."""
    st.session_state[ROOT_KEY] = app_root(st.context.url, page_path)


def _source(relative_url: str, path: Path) -> str:
    root = st.session_state.get(ROOT_KEY)
    return urljoin(root, relative_url) if root else str(path)


def thumbnail(thumb_path: str | None, data_dir: Path, *, width: Any = "stretch", where: Any = None) -> bool:
    """Draw a stored thumbnail (``thumbs/ab/<hash>.jpg`` under ``data_dir``) from the thumbnail route;
    False, drawing nothing, when there is none on disk. ``where``: a container (default: here)."""
    if not thumb_path or not (data_dir / thumb_path).is_file():
        return False
    (where or st).image(_source(serving.thumbnail_url(thumb_path), data_dir / thumb_path), width=width)
    return True


def image(image_path: str | None, data_dir: Path, *, width: Any = "stretch", where: Any = None) -> bool:
    """Draw a stored full image (``images/ab/<hash>.png|jpg``) from the image route; False, drawing
    nothing, when there is none on disk."""
    if not image_path or not (data_dir / image_path).is_file():
        return False
    (where or st).image(_source(serving.image_url(image_path), data_dir / image_path), width=width)
    return True
