"""The run lifecycle as data: every state a run can be in, what it means, and where it may go next.

One table, read by everything that interprets a status: the ledger (which refuses a change the table
does not allow), History's filters, a sweep's cells, the words pages show and the CLI's exit code.
Only QUEUED, PROCESSING and COMPLETED are also the server's words; the rest are Flux Lab's.

The transitions are the ones the runner makes (flux_core/runner.py), including `resume()`: a run
caught SUBMITTING is SETTLING (looked up in Segmind's request history: adopted when found, sent
again once when the history has had its grace window and holds nothing, SUBMIT_UNKNOWN for a person
when the history cannot be read), and a run waiting for a key nobody enters again EXPIRES once its
output can no longer exist. A non-terminal state may be reported again (a resumed run sees
PROCESSING a second time); a terminal state takes no further status change. Changing only a run's
fields (notes, an error text, a lease) is not a transition and is always allowed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Literal

CREATED = "CREATED"  # written down, not sent
SUBMITTING = "SUBMITTING"  # the submit is in flight
QUEUED, PROCESSING = "QUEUED", "PROCESSING"
DOWNLOADING = "DOWNLOADING"  # COMPLETED on the server, image not stored yet
COMPLETED = "COMPLETED"  # the image is stored
FAILED, BLOCKED, EXPIRED = "FAILED", "BLOCKED", "EXPIRED"
ERROR = "ERROR"  # the call failed before Segmind took the job: nothing billed
SETTLING = "SETTLING"  # the submit's reply was lost: looking it up in Segmind's request history
SUBMIT_UNKNOWN = "SUBMIT_UNKNOWN"  # the submit may have landed and the history cannot tell: a person checks
UNUSABLE = "UNUSABLE"  # Segmind completed (and billed) the job, but its output could not be used

# The CLI's exit codes (a run that needs a person's attention outranks one that merely failed).
EXIT_OK, EXIT_JOB_FAILED, EXIT_CALL_FAILED = 0, 1, 3
_EXIT_PRECEDENCE = (EXIT_CALL_FAILED, EXIT_JOB_FAILED, EXIT_OK)

# History's status filters, in the order they are offered.
GROUPS = ("completed", "blocked", "failed", "expired", "in flight")

Billed = Literal["no", "maybe", "yes"]


@dataclass(frozen=True)
class State:
    name: str
    group: str  # one of GROUPS
    words: str  # for people
    terminal: bool  # the run is over: no status change follows
    billed: Billed  # may Segmind have charged for it?
    retryable: bool  # "retry failed cells" runs it again (not a block, nor a submit that may have landed)
    exit_code: int  # what `flux-lab` exits with when a run ends (or is left) here
    then: tuple[str, ...]  # the statuses it may change to


_ENDS = (FAILED, BLOCKED, EXPIRED, UNUSABLE)  # how a job Segmind took can end without an image
_CALL, _JOB, _OK = EXIT_CALL_FAILED, EXIT_JOB_FAILED, EXIT_OK

# fmt: off
STATES: dict[str, State] = {s.name: s for s in (
    #     name            group        words                                  terminal billed  retry  exit   then
    State(CREATED,        "in flight", "Written down, about to be sent",      False,   "no",    False, _CALL, (CREATED, SUBMITTING, ERROR)),
    State(SUBMITTING,     "in flight", "Sending to the server",               False,   "maybe", False, _CALL, (SUBMITTING, QUEUED, ERROR, SETTLING)),
    State(SETTLING,       "in flight", "Reply lost; checking Segmind's record", False, "maybe", False, _CALL, (SETTLING, SUBMITTING, QUEUED, SUBMIT_UNKNOWN)),
    State(QUEUED,         "in flight", "Queued at the server",                False,   "maybe", False, _CALL, (QUEUED, PROCESSING, DOWNLOADING, *_ENDS)),
    State(PROCESSING,     "in flight", "Generating",                          False,   "maybe", False, _CALL, (PROCESSING, DOWNLOADING, *_ENDS)),
    State(DOWNLOADING,    "in flight", "Finished; saving the image",          False,   "yes",   False, _CALL, (DOWNLOADING, COMPLETED, UNUSABLE, EXPIRED)),
    State(COMPLETED,      "completed", "Done",                                True,    "yes",   False, _OK,   ()),
    State(FAILED,         "failed",    "Failed",                              True,    "no",    True,  _JOB,  ()),
    State(BLOCKED,        "blocked",   "Blocked by the safety filter",        True,    "no",    False, _JOB,  ()),
    State(EXPIRED,        "expired",   "Expired",                             True,    "maybe", True,  _JOB,  ()),
    State(ERROR,          "failed",    "Not sent",                            True,    "no",    True,  _CALL, ()),
    State(SUBMIT_UNKNOWN, "failed",    "Submit outcome unknown",              True,    "maybe", False, _CALL, ()),
    State(UNUSABLE,       "failed",    "Billed, but the output was unusable", True,    "yes",   True,  _JOB,  ()),
)}
# fmt: on

# Derived views, in the table's order.
ACTIVE = tuple(s.name for s in STATES.values() if not s.terminal)
WORDS = {s.name: s.words for s in STATES.values()}
BY_GROUP = {g: tuple(s.name for s in STATES.values() if s.group == g) for g in GROUPS}


def allowed(current: str, new: str) -> bool:
    """May a run in `current` change its status to `new`?"""
    state = STATES.get(current)
    return state is not None and new in state.then


def path_to(status: str) -> tuple[str, ...]:
    """The shortest walk the table allows from CREATED to `status` (both ends included)."""
    came_from: dict[str, str | None] = {CREATED: None}
    todo = deque([CREATED])
    while todo:
        here = todo.popleft()
        if here == status:
            walk = [here]
            while (back := came_from[walk[-1]]) is not None:
                walk.append(back)
            return tuple(reversed(walk))
        for nxt in STATES[here].then:
            if nxt not in came_from:
                came_from[nxt] = here
                todo.append(nxt)
    raise ValueError(f"no run can reach the status {status!r}; known statuses: {', '.join(STATES)}")


def exit_code(statuses: Iterable[str]) -> int:
    """The CLI's exit code for a set of runs: the most serious of their states' codes."""
    codes = {STATES[s].exit_code for s in statuses}
    return next((code for code in _EXIT_PRECEDENCE if code in codes), EXIT_OK)
