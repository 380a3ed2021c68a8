"""The live parts of pages: told of a change in the ledger instead of reading it on a timer.

``follow(wb, place)``, first thing in a fragment, draws an invisible element that waits on the ledger's
change feed (the ``/_flux/changes`` socket, serving.py; flux_core/ledger/changes.py) and, when the
ledger has changed since the version the fragment was drawn at, sets its trigger value: a trigger of
an element inside a ``st.fragment`` reruns that fragment only, so the fragment reads the ledger again
and draws what changed, and the rest of the page is left alone. A change made anywhere (another tab,
another person, the CLI) reaches every open page this way.

In the browser, every live element of a tab shares one WebSocket, kept open, on which the tab asks
one question at a time (what its parts drew) and each answer is followed by the next question. Not
a long poll: a browser opens at most six HTTP connections to one server, and a long poll held one per
tab, so with six tabs open a seventh did not load (nor did any thumbnail) for up to LIVE_WAIT_S. The
fragments due are triggered one at a time (Streamlit sends one fragment's triggers a message), a
hidden tab stops asking until it is shown again (then asks at once), and a socket that closes (the
server is down or restarting) is opened again after LIVE_RETRY_S, doubling up to LIVE_RETRY_MAX_S:
the only timer left, and only while the channel is down.

A part that says what it shows (``mark(wb, topic)`` before it reads, then ``follow(wb, place, that
mark)``; topics: ``runs``, ``recent``, ``sweep``, ``sweeps`` below) is told only when its topic's digest
changes (flux_core/ledger/changes.py): a lease renewed or another run's check landing leaves it alone,
so it costs the server nothing and cannot swallow a click made meanwhile. The part a person waits for
(Compose's result, Compare's live grid) is told at once (``first``); the others once the ledger has
been quiet for LIVE_LATER_S, so their redraws do not compete with it for the server.

``fragment(body)`` is ``st.fragment`` for such a part: an error in it, on the page's run or on a
rerun of the part alone, is the app's short message (flux_ui/failure.py), never Streamlit's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from flux_core import defaults as D
from flux_core.ledger import changes
from flux_core.service import Workbench
from flux_ui import failure, serving

_JS = """
const hub = { subs: new Map(), known: 0, digests: {}, digestsAt: 0, queue: [], pumping: false, socket: null, asked: 0, retry: 0 };

// Streamlit sends the trigger values set in one task as one message for one fragment (a second
// fragment's is dropped), so the fragments due are triggered one task apart, the first ones first.
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

// due: a part with a topic when the topic's digest, as of a version after the part was drawn,
// differs from the one it drew; a part without one on any change after it was drawn
function due(sub) {
  if (!sub.topic) return sub.since < hub.known;
  const now = hub.digests[sub.topic];
  return hub.digestsAt > sub.since && now !== undefined && now !== sub.digest;
}

// The parts a person waits for ("first") are told at once; the others once the ledger has been
// quiet for later_s (at most later_max_s after the first change they missed), so their redraws do
// not compete with the first ones (and with the picture being stored and fetched) for the server.
function fire() {
  let waiting = false;
  const order = [...hub.subs.values()].sort((a, b) => (b.first ? 1 : 0) - (a.first ? 1 : 0));
  for (const sub of order) {
    if (sub.fired || !due(sub)) continue;
    if (sub.first) { sub.fired = true; hub.queue.push(sub); } else waiting = true;
  }
  if (waiting) later();
  pump();
}

function later() {
  const now = Date.now();
  hub.laterSince = hub.laterSince || now;
  clearTimeout(hub.laterTimer);
  const wait = Math.min(hub.later_s * 1000, Math.max(0, hub.laterSince + hub.later_max_s * 1000 - now));
  hub.laterTimer = setTimeout(() => {
    hub.laterSince = 0;
    for (const sub of hub.subs.values()) {
      if (!sub.first && !sub.fired && due(sub)) { sub.fired = true; hub.queue.push(sub); }
    }
    pump();
  }, wait);
}

// the question standing: what every part of the tab drew (a part told and not yet drawn again is
// left out: it will be drawn anew, and then asks with what it drew)
function question() {
  const subs = [...hub.subs.values()];
  const since = hub.known || Math.min(...subs.map((s) => s.since));
  const topics = new Map();
  let any = false;
  for (const sub of subs) {
    if (!sub.topic) any = true;
    else if (!sub.fired) topics.set(sub.topic, sub.digest);
  }
  return { since, topics: [...topics], any };
}

// one socket a tab, kept open (a long poll per tab would hold one of the browser's six connections
// to the server); a new question replaces the one standing, each answer is followed by the next
function ask() {
  hub.askSoon = false;
  const socket = hub.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || !hub.subs.size) return;
  if (document.hidden) { hub.askWhenShown = true; return; }  // a hidden tab asks nothing
  hub.asked += 1;
  socket.send(JSON.stringify({ n: hub.asked, ...question() }));
}

function askSoon() {  // the parts drawn in one go ask once
  if (hub.askSoon) return;
  hub.askSoon = true;
  setTimeout(ask, 0);
}

function connect() {
  if (hub.socket || !hub.subs.size) return;
  const url = new URL(hub.url, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = hub.socket = new WebSocket(url);
  socket.onopen = () => { hub.retry = hub.retry_s; ask(); };
  socket.onmessage = (event) => {
    const { n, version, digests } = JSON.parse(event.data);
    if (version === undefined) return;  // a question refused: the socket closes, and opens again
    hub.known = Math.max(hub.known, Number(version));
    if (digests && Number(version) >= hub.digestsAt) { Object.assign(hub.digests, digests); hub.digestsAt = Number(version); }
    fire();
    if (n === hub.asked) ask();  // the question standing was answered: ask the next one
  };
  socket.onclose = () => {  // the server is down or restarting: again later, less and less often
    if (hub.socket !== socket) return;
    hub.socket = null;
    const wait = hub.retry || hub.retry_s;
    hub.retry = Math.min(wait * 2, hub.retry_max_s);
    setTimeout(connect, wait * 1000);
  };
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && hub.askWhenShown) { hub.askWhenShown = false; ask(); }
});

export default function ({ data, setTriggerValue }) {
  hub.url = data.url;
  hub.retry_s = data.retry_s;
  hub.retry_max_s = data.retry_max_s;
  hub.refire_s = data.refire_s;
  hub.later_s = data.later_s;
  hub.later_max_s = data.later_max_s;
  const mine = {
    place: data.place, since: data.since, topic: data.topic, digest: data.digest, first: data.first,
    fired: false, trigger: setTriggerValue,
  };
  hub.subs.set(data.place, mine);
  fire();  // a change that came while the fragment was drawn: at once
  connect();
  askSoon();  // the question standing asks about what is drawn now
  return () => { if (hub.subs.get(data.place) === mine) hub.subs.delete(data.place); };
}
"""

# Defined once, when the page first imports this module (Streamlit warns when a name is defined twice).
_component = st.components.v2.component("flux_lab.live", js=_JS)


def runs(run_ids: list[str]) -> str:
    """The topic of these runs (their rows, checks, verdicts and comments)."""
    return changes.topic(changes.RUNS, *run_ids)


def recent(limit: int) -> str:
    """The topic of the ledger's newest `limit` runs."""
    return changes.topic(changes.RECENT, limit)


def sweep(sweep_id: str) -> str:
    """The topic of one sweep (its cells, their runs, votes and hunt)."""
    return changes.topic(changes.SWEEP, sweep_id)


def sweeps(limit: int) -> str:
    """The topic of the newest `limit` sweeps."""
    return changes.topic(changes.SWEEPS, limit)


def _changed() -> None:
    """Nothing to do: the trigger's rerun of the fragment is the point."""


@dataclass(frozen=True)
class Mark:
    """What a live part read the ledger at: the change feed's version and its topic's digest, taken
    before the part reads anything (a change after it is then told, never missed)."""

    version: int
    topic: str | None = None
    digest: str | None = None


def mark(wb: Workbench, topic: str | None = None) -> Mark:
    """Call before a live part reads the ledger: the moment it follows from (see ``follow``)."""
    if topic is None:
        return Mark(wb.changes.version)
    version, digests = wb.changes.digests([topic])
    found = digests[topic]
    return Mark(version, topic if found is not None else None, found)


def follow(wb: Workbench, place: str, since: Mark | None = None, *, first: bool = False) -> int:
    """Call in a fragment that shows something of the ledger: the fragment reruns (alone) when the
    ledger changes after ``since`` (default: now, no topic). With a topic in ``since``, only when that
    topic's digest changes. ``first``: told at once (what a person waits for); the page's other parts are told once
    the ledger has been quiet for LIVE_LATER_S (at most LIVE_LATER_MAX_S after the change).
    Returns the change feed's version it follows from."""
    taken = since or mark(wb)
    _component(
        key=f"live_{place}",
        data={
            "place": place,
            "since": taken.version,
            "topic": taken.topic,
            "digest": taken.digest,
            "first": first,
            "url": f".{serving.CHANGES_URL}",
            "retry_s": D.LIVE_RETRY_S,
            "retry_max_s": D.LIVE_RETRY_MAX_S,
            "refire_s": D.LIVE_REFIRE_S,
            "later_s": D.LIVE_LATER_S,
            "later_max_s": D.LIVE_LATER_MAX_S,
        },
        height=0,
        on_changed_change=_changed,
    )
    return taken.version


def fragment_only() -> bool:
    """Whether this script run is a rerun of fragments alone (not of the whole page)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


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
