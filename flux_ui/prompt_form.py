"""Compose's prompt as a form: a structured prompt's fields as rows, beside its text.

The text is the prompt: the form is drawn from it on every run, and each edit in the form rewrites
that one field's characters in the text (flux_core/structured.py), so switching between them loses
nothing and what is sent is exactly the text shown. Lists have rows to add and remove; nested keys
are groups; a hex code shows its colour (and a hint when it colours no object); words in quotation
marks that the text check will look for are named as text that must appear. A text that looks structured but does not parse says
where (line, column) and is still sent as typed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from flux_core import presentation as P
from flux_core import structured
from flux_core.checks import expect
from flux_core.params import ParamsError

state = st.session_state
PROBLEM = "compose_fields_problem"  # a form edit refused (e.g. a line break in a YAML-style value)


def _key(path: str) -> str:
    """A widget key for a field: stable for its path, short and free of any character of it."""
    return "compose_field_" + hashlib.sha1(path.encode()).hexdigest()[:12]


def _edit(text_key: str, change: Callable[[str], str]) -> None:
    """A form edit: the prompt's text rewritten by `change`, or the reason it was not."""
    try:
        state[text_key] = change(state.get(text_key) or "")
        state.pop(PROBLEM, None)
    except (ParamsError, structured.StructureError) as exc:
        state[PROBLEM] = "; ".join(getattr(exc, "problems", [str(exc)]))


def _set(text_key: str, path: str) -> None:
    value = state.get(_key(path), "")
    _edit(text_key, lambda text: structured.set_value(text, path, value))


def _add(text_key: str, path: str) -> None:
    _edit(text_key, lambda text: structured.add_item(text, path))


def _remove(text_key: str, path: str) -> None:
    _edit(text_key, lambda text: structured.remove_item(text, path))


def _label(node: structured.Node) -> str:
    if node.key is not None:
        return node.key
    index = re.search(r"\[(\d+)\]$", node.path)
    return f"item {int(index.group(1)) + 1}" if index else node.path


def _field(text_key: str, node: structured.Node, in_list: bool, required: set[str]) -> None:
    key = _key(node.path)
    state[key] = node.text  # the text is the truth: the row shows what it holds now
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    row.text_input(_label(node), key=key, on_change=_set, args=(text_key, node.path), help=node.path)
    if in_list:
        _remove_button(row, text_key, node.path)
    codes = structured.hex_codes(node.text)
    if codes:
        swatches = st.container(horizontal=True, gap="small")
        for i, code in enumerate(codes):
            swatches.color_picker(
                code,
                _full_hex(code),
                key=f"{key}_swatch_{i}_{code}",
                disabled=True,
                label_visibility="collapsed",
            )
        untied = structured.untied_hex(node.text)
        if untied:
            st.caption(
                P.markdown_text(
                    f"{', '.join(untied)} colours no object: Black Forest Labs' guide ties each colour to one, "
                    f"e.g. terracotta walls in hex {untied[0]}"
                )
            )
    words = [w for w in structured.quoted(node.text) if w in required]
    if words:
        st.caption(
            "Must appear as text in the image: " + P.markdown_text(" · ".join(f"“{w}”" for w in words))
        )


def _remove_button(where: Any, text_key: str, path: str) -> None:
    """A list item's Remove: its row (or its lines) taken out of the prompt's text."""
    where.button(
        "Remove",
        key=f"{_key(path)}_remove",
        icon=":material/close:",
        help=f"Remove {path}",
        on_click=_remove,
        args=(text_key, path),
        type="tertiary",
    )


def _full_hex(code: str) -> str:
    code = code.lstrip("#")
    return "#" + ("".join(c * 2 for c in code) if len(code) == 3 else code).lower()


def _group(text_key: str, node: structured.Node, required: set[str]) -> None:
    for child in node.children:
        if child.scalar:
            _field(text_key, child, node.kind == "list", required)
            continue
        with st.container(border=True, key=f"{_key(child.path)}_box"):
            head = st.container(horizontal=True, vertical_alignment="center")
            head.caption(P.markdown_text(child.path) + (" (list)" if child.kind == "list" else ""))
            if node.kind == "list":
                _remove_button(head, text_key, child.path)
            _group(text_key, child, required)
    if node.kind == "list":
        st.button(
            "Add a row",
            key=f"{_key(node.path)}_add",
            icon=":material/add:",
            on_click=_add,
            args=(text_key, node.path),
            type="tertiary",
            help=f"Add an item to {node.path}",
        )


def draw(text_key: str) -> None:
    """The form of the prompt in `state[text_key]`, offered by a toggle: its fields, or why it has none.

    The toggle is always there (the text area does not rerun the page while a person types, so the
    page cannot know yet whether a pasted text has fields); turning it on reads the text as it is."""
    text = state.get(text_key) or ""
    try:
        doc, problem = structured.parse(text), None
    except structured.StructureError as exc:
        doc, problem = None, exc
    about = ""
    if doc is not None:
        about = f" ({len(doc.fields())} fields, {'JSON' if doc.form == structured.JSON else 'YAML-style'})"
    on = st.toggle(
        f"Edit as fields{about}",
        key="compose_fields_on",
        help="A JSON or YAML-style prompt as fields: each edit rewrites only its own value in the "
        "prompt, and the text stays exactly what is sent.",
    )
    if problem is not None:  # said whether or not the form is open: the text is still sent as typed
        st.caption(
            P.markdown_text(f"Not read as fields: {problem}. It is sent as plain text, exactly as typed.")
        )
        return
    if not on:
        return
    if doc is None:
        st.caption(
            "This prompt is plain text. A JSON object, or YAML-style lines of key: value, "
            "has fields to edit here (the Magazine shoot template is one)."
        )
        return
    refused = state.get(PROBLEM)
    if refused:
        st.warning(P.markdown_text(refused), icon=":material/warning:")
    with st.container(key="compose_fields", height=420):
        _group(text_key, doc.root, set(expect.texts(text)))  # the words the text check will look for
