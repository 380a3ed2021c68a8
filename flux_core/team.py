"""Who may do what: the people let in, their roles, and the rule for every operation.

With sign-in configured (an [auth] section in .streamlit/secrets.toml, Streamlit's st.login), the
same file's [team] section is the allowlist and the roles at once:

    [team]
    admins = ["ana@example.com"]
    members = ["@example.com"]        # a whole domain: an entry that starts with "@"
    viewers = ["@partner.example"]

A person's role is the one of the most specific entry that names them: their own e-mail address
before their domain; an address or domain listed under two roles takes the higher one. Nobody else
gets in. Without sign-in, the app is a personal tool and whoever uses it, in the browser or at the
command line, is the local user (`local:<name>`), an admin; the CLI always acts so: whoever has a
shell on the server holds the ledger file and the key already.

`allowed()` is the one rule; the service layer (flux_core/service.py) asks it before every
operation, whatever the front end, and pages ask it only to leave out what a role may not do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

from flux_core.errors import NotAllowed
from flux_core.settings import local_user


class Role(enum.IntEnum):
    VIEWER = 1  # sees runs, sweeps, images and votes; votes, comments and gives verdicts; spends nothing, never uses the team key
    MEMBER = 2  # generates and sweeps on the team key or their own; curates and deletes their own runs
    ADMIN = 3  # everything: the spend caps, other people's runs, purging the trash, every board and sweep

    @property
    def label(self) -> str:
        return self.name.lower()


class Op(enum.Enum):
    """What a person can do beyond looking (everyone let in sees runs, sweeps, images and votes),
    each with the words a refusal uses ("... may not <words>")."""

    VOTE = "vote on a sweep's pairs"
    REVIEW = "comment on a run or give it a verdict"
    UNCOMMENT = "delete this comment"
    SPEND = "generate, sweep or run again (that spends the key's credits)"
    USE_KEY = "use the team's Segmind key"
    CURATE = "change the favourite mark, rating, notes, tags or boards of this run"
    DELETE = "delete or restore this run"
    PURGE = "empty the trash for good"
    BOARD = "create, rename or delete a board"
    SWEEP = "rename this sweep"
    PRESET = "save or delete presets"
    IMPORT = "import runs from Segmind's request history"
    CAPS = "set the spend caps"
    VERSION = "name or pin a version of a run"


# the least role each operation needs; "own" operations need MEMBER on one's own things, ADMIN else
_LEAST: dict[Op, Role] = {
    Op.VOTE: Role.VIEWER,
    Op.REVIEW: Role.VIEWER,
    Op.UNCOMMENT: Role.VIEWER,
    Op.SPEND: Role.MEMBER,
    Op.USE_KEY: Role.MEMBER,
    Op.CURATE: Role.MEMBER,
    Op.DELETE: Role.MEMBER,
    Op.PURGE: Role.ADMIN,
    Op.BOARD: Role.MEMBER,
    Op.SWEEP: Role.MEMBER,
    Op.PRESET: Role.MEMBER,
    Op.IMPORT: Role.ADMIN,
    Op.CAPS: Role.ADMIN,
    Op.VERSION: Role.MEMBER,
}
OWN = frozenset({Op.CURATE, Op.DELETE, Op.SWEEP, Op.BOARD, Op.UNCOMMENT})  # on someone else's: admins only


@dataclass(frozen=True)
class Actor:
    """Who acts. `id` is what the ledger records: a signed-in person's e-mail address (lower case),
    else "local:<name>"."""

    id: str
    role: Role
    name: str = ""
    signed_in: bool = False

    @property
    def label(self) -> str:
        """How the person is shown: their name and address, or the address alone."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


def local() -> Actor:
    """The local user: whoever runs Flux Lab without sign-in, or its CLI; an admin."""
    return Actor(local_user(), Role.ADMIN)


def allowed(actor: Actor, op: Op, owner: str | None = None) -> bool:
    """Whether `actor` may do `op`; for a run's or sweep's own operations, `owner` is who made it."""
    need = _LEAST[op]
    if op in OWN and owner is not None and owner != actor.id:
        need = Role.ADMIN
    return actor.role >= need


def require(actor: Actor, op: Op, owner: str | None = None) -> None:
    """NotAllowed, saying who may, unless `actor` may do `op`."""
    if allowed(actor, op, owner):
        return
    need = _LEAST[op]
    if op in OWN and owner is not None and owner != actor.id:
        raise NotAllowed(
            f"{actor.id} ({actor.role.label}) may not {op.value}: it is {owner}'s.",
            hint="Only an admin may change other people's runs, sweeps and boards.",
        )
    raise NotAllowed(
        f"{actor.id} is a {actor.role.label} and may not {op.value}.",
        hint=f"That needs the {need.label} role; an admin can give it in the [team] section of the "
        "server's .streamlit/secrets.toml.",
    )


@dataclass(frozen=True)
class Team:
    """The allowlist and roles of the [team] section: e-mail addresses and "@domain" entries."""

    admins: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()

    @classmethod
    def parse(cls, section: Mapping[str, Any] | None) -> "Team":
        """The [team] section as read from secrets.toml; a ValueError naming the entry that is not an
        e-mail address or an "@domain", and one when nobody at all is let in."""
        section = dict(section or {})
        unknown = sorted(set(section) - {"admins", "members", "viewers"})
        if unknown:
            raise ValueError(
                f"[team] in .streamlit/secrets.toml knows admins, members and viewers, not {', '.join(unknown)}"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for field in ("admins", "members", "viewers"):
            value = section.get(field, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"[team] {field} must be a list of e-mail addresses and @domains")
            entries = []
            for entry in value:
                text = str(entry).strip().lower()
                if not _entry_ok(text):
                    raise ValueError(
                        f"[team] {field}: {str(entry)!r} is neither an e-mail address (ana@example.com) "
                        "nor a domain (@example.com)"
                    )
                entries.append(text)
            lists[field] = tuple(entries)
        team = cls(**lists)
        if not (team.admins or team.members or team.viewers):
            raise ValueError(
                "sign-in is configured but nobody may sign in: list admins, members or viewers "
                "(e-mail addresses or @domains) under [team] in .streamlit/secrets.toml"
            )
        return team

    def role_of(self, email: str | None) -> Role | None:
        """The role of a person with this (verified) e-mail address; None: not let in."""
        address = (email or "").strip().lower()
        if not _entry_ok(address) or address.startswith("@"):
            return None
        domain = "@" + address.rsplit("@", 1)[1]
        for wanted in (address, domain):
            for role, entries in (
                (Role.ADMIN, self.admins),
                (Role.MEMBER, self.members),
                (Role.VIEWER, self.viewers),
            ):
                if wanted in entries:
                    return role
        return None

    def actor(self, email: str | None, name: str | None = None) -> Actor | None:
        """The signed-in person as an Actor, or None when the allowlist does not let them in."""
        role = self.role_of(email)
        if role is None:
            return None
        return Actor((email or "").strip().lower(), role, (name or "").strip(), signed_in=True)


def _entry_ok(text: str) -> bool:
    """An e-mail address or an "@domain": one @, a dot in the domain, no spaces."""
    if text.count("@") != 1 or any(c.isspace() for c in text):
        return False
    local_part, domain = text.split("@")
    return (
        "." in domain.strip(".") and not domain.startswith(".") and (local_part != "" or text.startswith("@"))
    )
