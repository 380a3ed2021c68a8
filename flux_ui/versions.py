"""Versions for the data of Flux Lab's browser elements, so an older draw never replaces a newer one.

Streamlit calls an element's function again for each new piece of data, each call after an
asynchronous import, and an older call can finish after a newer one: Chromium notifies the imports
of a module still being fetched from a hash set, in no set order, and Streamlit does not drop a
superseded call to an inline module. So each element's data carries a version that grows whenever
the data changes, and its script draws only data not older than what it shows (``STALE_JS``, first
in the function). Seen once on a fresh clone under load: History showing the previous search's
cards under the new caption.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import streamlit as st

# The first lines of an element's function: `root` is the element's own node.
STALE_JS = """
  if (data.version < Number(root.dataset.version || 0)) return;  // an older call, finished late
  root.dataset.version = String(data.version);
"""

_lock = threading.Lock()
_last = [0]


def _next() -> int:
    """A number larger than any before it in this process, and than any an earlier process gave
    (microseconds of the clock), so a page that outlives a server restart still takes new versions."""
    with _lock:
        _last[0] = max(_last[0] + 1, time.time_ns() // 1000)
        return _last[0]


def versioned(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its version for the element `key`: the same as last time when nothing in it
    changed (the element is then not drawn again), a larger one when anything did."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    slot = f"{key}_version"  # (digest of the data last drawn, its version) in session state
    last = st.session_state.get(slot)
    if not (isinstance(last, tuple) and last[0] == digest):
        last = (digest, _next())
        st.session_state[slot] = last
    return {**data, "version": last[1]}
