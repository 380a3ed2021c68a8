"""The live parts of pages: told of a change in the ledger instead of reading it on a timer.

``follow(wb, place)``, first thing in a fragment, draws an invisible element that waits on the ledger's
change feed (the ``/_flux/changes`` long poll, serving.py; flux_core/ledger/changes.py) and, when the
ledger has changed since the version the fragment was drawn at, sets its trigger value: a trigger of
an element inside a ``st.fragment`` reruns that fragment only, so the fragment reads the ledger again
and draws what changed, and the rest of the page is left alone. A change made anywhere (another tab,
another person, the CLI) reaches every open page this way.

In the browser, every live element of a tab shares one long poll (at most one connection held per
tab), the fragments due are triggered one at a time (Streamlit sends one fragment's triggers a
message), a hidden tab stops asking until it is shown again (then asks at once), and a failed poll (the
server is down or restarting) is asked again after LIVE_RETRY_S, doubling up to LIVE_RETRY_MAX_S: the
only timer left, and only while the channel is down.

``fragment(body)`` is ``st.fragment`` for such a part: an error in it, on the page's run or on a
rerun of the part alone, is the app's short message (flux_ui/failure.py), never Streamlit's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from flux_core import defaults as D
from flux_core.service import Workbench
from flux_ui import failure, serving

_JS = """
const hub = { subs: new Map(), known: 0, running: false, queue: [], pumping: false };

// Streamlit sends the trigger values set in one task as one message for one fragment (a second
// fragment's is dropped), so the fragments due are triggered one task apart.
function pump() {
  if (hub.pumping || !hub.queue.length) return;
  hub.pumping = true;
  const sub = hub.queue.shift();
  if (hub.subs.get(sub.place) === sub) {
    sub.trigger("changed", hub.known);  // reruns the fragment the element is in
    // a trigger lost all the same (a click in the same task): asked again, unless drawn anew by then
    setTimeout(() => { if (hub.subs.get(sub.place) === sub && sub.fired) { sub.fired = false; fire(); } }, hub.refire_s * 1000);
  }
  setTimeout(() => { hub.pumping = false; pump(); }, 0);
}

function fire() {
  for (const sub of hub.subs.values()) {
    if (!sub.fired && sub.since < hub.known) {
      sub.fired = true;
      hub.queue.push(sub);
    }
  }
  pump();
}

function shown() {
  return new Promise((resolve) => {
    const seen = () => { if (!document.hidden) { document.removeEventListener("visibilitychange", seen); resolve(); } };
    document.addEventListener("visibilitychange", seen);
  });
}

async function listen() {
  if (hub.running) return;
  hub.running = true;
  let retry = hub.retry_s;
  while (hub.subs.size) {
    if (document.hidden) { await shown(); continue; }
    const since = hub.known || Math.min(...[...hub.subs.values()].map((s) => s.since));
    try {
      const answer = await fetch(`${hub.url}?since=${since}`, { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const { version } = await answer.json();
      hub.known = Math.max(hub.known, Number(version));
      retry = hub.retry_s;
      fire();
    } catch (error) {  // the server is down or restarting: ask again later, less and less often
      await new Promise((resolve) => setTimeout(resolve, retry * 1000));
      retry = Math.min(retry * 2, hub.retry_max_s);
    }
  }
  hub.running = false;
}

export default function ({ data, setTriggerValue }) {
  hub.url = data.url;
  hub.retry_s = data.retry_s;
  hub.retry_max_s = data.retry_max_s;
  hub.refire_s = data.refire_s;
  const mine = { place: data.place, since: data.since, fired: false, trigger: setTriggerValue };
  hub.subs.set(data.place, mine);
  fire();  // a change that came while the fragment was drawn: at once
  listen();
  return () => { if (hub.subs.get(data.place) === mine) hub.subs.delete(data.place); };
}
"""

# Defined once, when the page first imports this module (Streamlit warns when a name is defined twice).
_component = st.components.v2.component("flux_lab.live", js=_JS)


def _changed() -> None:
    """Nothing to do: the trigger's rerun of the fragment is the point."""


def follow(wb: Workbench, place: str) -> int:
    """Call first in a fragment that shows something of the ledger: the fragment reruns (alone) when
    the ledger changes after this moment. Returns the change feed's version it follows from."""
    seen = wb.changes.version  # read before the fragment reads the ledger: a change after it is told
    _component(
        key=f"live_{place}",
        data={
            "place": place,
            "since": seen,
            "url": f".{serving.CHANGES_URL}",
            "retry_s": D.LIVE_RETRY_S,
            "retry_max_s": D.LIVE_RETRY_MAX_S,
            "refire_s": D.LIVE_REFIRE_S,
        },
        height=0,
        on_changed_change=_changed,
    )
    return seen


def fragment(body: Callable[..., Any]) -> Callable[..., Any]:
    """``st.fragment(body)``, with an error in it said as the app says one (and that part stopped)."""

    @functools.wraps(body)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except ScriptControlException:  # st.rerun, st.stop: Streamlit's own
            raise
        except Exception:
            failure.said(body.__qualname__)
            st.stop()

    return st.fragment(guarded)
