"""Structured prompts as data: a prompt that is JSON, or YAML-style `key: value` text, read as fields.

FLUX.2 takes structured prompts: Black Forest Labs' schema (`scene`, `subjects`, `style`,
`color_palette`, `lighting`, `camera`, …) as JSON, and Segmind's own example for flux-2-max as
YAML-style text with other keys. Flux Lab reads either into fields with a path each
(`subject.attire.top`, `color_palette[1]`) and where each value sits in the text, so that:

- an edit of one field rewrites only that value's characters: every other byte stays as typed, and
  what is sent is always exactly the text (the fields are a view of it, never a second copy);
- a sweep can vary one field (`set_value`), a comparison can name the fields that changed
  (`changed_fields`), and History can filter by a field's value (`value_at`);
- the same content can be sent as JSON, as YAML or as flattened prose (`render`).

The YAML-style reading is YAML's shape, not YAML's rules: a value is the text after `key: `, as
typed (quotes included: they mark the words that must appear in the image). Nesting follows the
indentation; Segmind's template has none, so there a key with no value that follows a blank line
(or starts the text) opens a section, a key with no value inside a section opens a group of it, and
a blank line closes them (`subject:` … `attire:` … `top: …` is `subject.attire.top`).

A text that starts with `{` or `[` is meant as JSON, and a text whose first line is `key:` or
`key: value` (and that has at least two keys) is meant as YAML-style: a mistake in either raises
`StructureError` naming the line and column. Any other text is plain prose (`parse` gives None).
Nothing here refuses to send a text: a prompt that does not parse is still sent as typed.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from flux_core import defaults as D
from flux_core.params import ParamsError

JSON, YAML = "json", "yaml"
FORMS = ("json", "yaml", "prose")  # what a "form of the prompt" axis may send

_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_-]*) *:(?: +(.*?))? *$")
_ITEM_LINE = re.compile(r"^( *)-(?: +(.*?))? *$")
_HEX = re.compile(r"(?<![\w#])#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![\w])")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_QUOTED = re.compile(r"(?<![\w])(['\"‘“])(.+?)(['\"’”])(?!\w)")


class StructureError(ValueError):
    """A text meant as JSON or YAML-style that does not parse: where, and what was expected."""

    def __init__(self, form: str, line: int, column: int, message: str):
        self.form, self.line, self.column, self.message = form, line, column, message
        super().__init__(
            f"{'JSON' if form == JSON else 'YAML-style'} prompt, line {line}, column {column}: {message}"
        )


@dataclass
class Node:
    """One value of the prompt. A scalar's `start:end` is its value's characters in the text (for
    JSON a string's quotes included); a group's or a list's is the whole block. `key` is the name it
    has in its group (None for a list item)."""

    path: str
    kind: str  # "text" | "number" | "bool" | "null" | "group" | "list"
    start: int
    end: int
    key: str | None = None
    value: Any = None  # a scalar's value (YAML: the text as typed; JSON: the decoded value)
    children: list[Node] = field(default_factory=list)
    line: int = 1  # where the node starts (1-based)
    indent: str = ""  # YAML: the indentation of the node's line; JSON: of the line it sits on
    empty_at: int | None = None  # YAML `key:` with no value: where a value would go (after the colon)

    @property
    def scalar(self) -> bool:
        return self.kind not in ("group", "list")

    @property
    def text(self) -> str:
        """A scalar as a person edits it."""
        if self.value is None:
            return "null" if self.kind == "null" else ""
        if self.kind == "bool":
            return "true" if self.value else "false"
        return str(self.value)


@dataclass
class Document:
    text: str
    form: str  # JSON or YAML
    root: Node

    def nodes(self) -> list[Node]:
        """Every node, parents before children, in text order."""
        out: list[Node] = []

        def walk(node: Node) -> None:
            out.append(node)
            for child in node.children:
                walk(child)

        for child in self.root.children:
            walk(child)
        return out

    def fields(self) -> list[Node]:
        """The scalars, in text order."""
        return [n for n in self.nodes() if n.scalar]

    def values(self) -> dict[str, str]:
        return {n.path: n.text for n in self.fields()}

    def find(self, path: str) -> Node:
        """The node at `path`, or at the one path that ends with it (`attire.top` finds
        `subject.attire.top`); a ParamsError naming the path otherwise."""
        path = path.strip()
        by_path = {n.path: n for n in self.nodes()}
        if path in by_path:
            return by_path[path]
        ends = [
            n
            for p, n in by_path.items()
            if p.endswith("." + path) or p.endswith(path) and path.startswith("[")
        ]
        if len(ends) == 1:
            return ends[0]
        if ends:
            shown = ", ".join(n.path for n in ends[:5])
            raise ParamsError([f"field {path!r} is ambiguous in this prompt: it could be {shown}"])
        near = [p for p in by_path if path.split(".")[-1].split("[")[0] in p][:5]
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ParamsError([f"field {path!r}: no such field in this prompt{hint}"])


# --- reading ---------------------------------------------------------------------------------


def form_of(text: str) -> str | None:
    """JSON, YAML or None (plain prose): what the text is meant as, before it is parsed."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return JSON
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not _KEY_LINE.match(lines[0]):
        return None
    return YAML if sum(1 for ln in lines if _KEY_LINE.match(ln) or _item_key(ln)) >= 2 else None


def parse(text: str) -> Document | None:
    """The prompt's fields, None for plain prose; StructureError for a structured text that does not parse."""
    form = form_of(text)
    if form == JSON:
        return Document(text, JSON, _JsonReader(text).document())
    if form == YAML:
        return Document(text, YAML, _YamlReader(text).document())
    return None


def try_parse(text: str) -> Document | None:
    """`parse`, with a text that does not parse read as plain prose."""
    try:
        return parse(text)
    except StructureError:
        return None


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _join(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    name = key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False).join("[]")
    if name.startswith("["):
        return f"{parent}{name}"
    return f"{parent}.{name}" if parent else name


class _JsonReader:
    """A JSON reader that keeps where every value is (the standard library's keeps none)."""

    _ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    _NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, message: str, pos: int | None = None) -> StructureError:
        line, col = _line_col(self.text, self.pos if pos is None else pos)
        return StructureError(JSON, line, col, message)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def document(self) -> Node:
        self.skip()
        node = self.value("", None)
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the end of the JSON value")
        if node.kind == "group" or node.kind == "list":
            return node
        raise self.fail("a JSON prompt is an object or a list", 0)

    def indent_at(self, pos: int) -> str:
        start = self.text.rfind("\n", 0, pos) + 1
        line = self.text[start:pos]
        return line[: len(line) - len(line.lstrip(" \t"))]

    def value(self, path: str, key: str | None) -> Node:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("a value was expected here (the text ends)")
        start, ch = self.pos, self.text[self.pos]
        line = _line_col(self.text, start)[0]
        indent = self.indent_at(start)
        if ch == "{":
            node = Node(path, "group", start, start, key, line=line, indent=indent)
            self.pos += 1
            self.skip()
            if self.text.startswith("}", self.pos):
                self.pos += 1
            else:
                while True:
                    self.skip()
                    if not self.text.startswith('"', self.pos):
                        raise self.fail('a key in double quotes was expected ("key": value)')
                    name = self.string()
                    self.skip()
                    if not self.text.startswith(":", self.pos):
                        raise self.fail("':' was expected after the key")
                    self.pos += 1
                    node.children.append(self.value(_join(path, name), name))
                    if not self.another("}"):
                        break
        elif ch == "[":
            node = Node(path, "list", start, start, key, line=line, indent=indent)
            self.pos += 1
            self.skip()
            if self.text.startswith("]", self.pos):
                self.pos += 1
            else:
                while True:
                    node.children.append(self.value(_join(path, len(node.children)), None))
                    if not self.another("]"):
                        break
        elif ch == '"':
            value = self.string()
            return Node(path, "text", start, self.pos, key, value, line=line, indent=indent)
        else:
            for word, kind, val in (("true", "bool", True), ("false", "bool", False), ("null", "null", None)):
                if self.text.startswith(word, self.pos):
                    self.pos += len(word)
                    return Node(path, kind, start, self.pos, key, val, line=line, indent=indent)
            m = self._NUMBER.match(self.text, self.pos)
            if not m:
                raise self.fail(
                    "a value was expected: text in double quotes, a number, true, false, null, {…} or […]"
                )
            self.pos = m.end()
            number = json.loads(m.group())
            return Node(path, "number", start, self.pos, key, number, line=line, indent=indent)
        node.end = self.pos
        return node

    def another(self, close: str) -> bool:
        """After a member of an object or a list: True at a comma (another follows), False at `close`."""
        self.skip()
        if self.text.startswith(",", self.pos):
            self.pos += 1
            return True
        if self.text.startswith(close, self.pos):
            self.pos += 1
            return False
        raise self.fail(f"',' or '{close}' was expected")

    def string(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("this text in quotes is never closed", start)
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\n":
                raise self.fail("a line break inside text in quotes (write \\n)")
            if ch == "\\":
                esc = self.text[self.pos + 1 : self.pos + 2]
                if esc in self._ESCAPES:
                    out.append(self._ESCAPES[esc])
                    self.pos += 2
                elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.text[self.pos + 2 : self.pos + 6]):
                    out.append(chr(int(self.text[self.pos + 2 : self.pos + 6], 16)))
                    self.pos += 6
                else:
                    raise self.fail("an unknown escape after \\")
                continue
            out.append(ch)
            self.pos += 1


def _item_key(line: str) -> re.Match[str] | None:
    """`- key: value`: a list item that starts a group."""
    m = _ITEM_LINE.match(line)
    if not m or not m.group(2):
        return None
    return _KEY_LINE.match(" " * (len(m.group(1)) + 2) + m.group(2))


@dataclass
class _Frame:
    node: Node
    indent: int | None  # the indentation of its children, once the first is read
    key_indent: int = -1
    level: int = 0  # a flat group's depth among the flat groups at its indentation (1: a section)
    line_start: int = 0  # where its key's line starts (a group's or a list's block starts there)


class _YamlReader:
    def __init__(self, text: str):
        self.text = text

    def fail(self, line: int, column: int, message: str) -> StructureError:
        return StructureError(YAML, line, column, message)

    def document(self) -> Node:
        root = Node("", "group", 0, len(self.text))
        stack = [_Frame(root, 0)]
        offset = 0
        for number, raw in enumerate(self.text.split("\n"), start=1):
            start, offset = offset, offset + len(raw) + 1
            body = raw.lstrip(" ")
            if body.startswith("\t"):
                raise self.fail(number, len(raw) - len(body) + 1, "indent with spaces, not tabs")
            if not body.strip():
                while len(stack) > 1 and (stack[-1].level or stack[-1].indent is None):
                    stack.pop()  # a blank line closes the flat groups (and leaves a `key:` empty)
                continue
            if body.startswith("#"):
                continue
            key = _KEY_LINE.match(raw)
            item = None if key else _ITEM_LINE.match(raw)
            indent = len(raw) - len(body)
            if not key and not item:
                raise self.fail(number, indent + 1, "expected `key: value`, `key:` or `- item`")
            parent = self.place(stack, indent, item is not None, number).node
            if key:
                if parent.kind == "list":
                    raise self.fail(number, indent + 1, "a list's items start with `- `")
                self.add_key(stack, parent, key, start, number, indent)
            else:
                assert item is not None
                if parent.kind != "list":
                    raise self.fail(number, indent + 1, "a list item (`- …`) with no `key:` above it")
                path = _join(parent.path, len(parent.children))
                sub = _item_key(raw)
                if sub:  # `- key: value`: an item that is a group, its other keys below at that indentation
                    node = Node(path, "group", start, start, None, line=number, indent=" " * indent)
                    parent.children.append(node)
                    inner = len(sub.group(1))
                    stack.append(_Frame(node, inner, key_indent=indent))
                    self.add_key(stack, node, sub, start, number, inner)
                else:
                    value = item.group(2) or ""
                    vstart = start + (item.start(2) if value else len(raw.rstrip()))
                    parent.children.append(
                        Node(
                            path,
                            "text",
                            vstart,
                            vstart + len(value),
                            None,
                            value,
                            line=number,
                            indent=" " * indent,
                            empty_at=None if value else vstart,  # `-`: a value goes after a space
                        )
                    )
            for frame in stack[1:]:
                if not frame.node.scalar:
                    frame.node.end = start + len(raw)
        return root

    def add_key(
        self, stack: list[_Frame], parent: Node, key: re.Match[str], start: int, number: int, indent: int
    ) -> None:
        name, value = key.group(2), key.group(3)
        if any(c.key == name for c in parent.children):
            where = parent.path or "the prompt"
            raise self.fail(number, indent + 1, f"the key {name!r} appears twice in {where}")
        path = _join(parent.path, name)
        if value:
            vstart = start + key.start(3)
            node = Node(
                path, "text", vstart, vstart + len(value), name, value, line=number, indent=" " * indent
            )
            parent.children.append(node)
            return
        at = self.text.index(":", start + key.end(2)) + 1  # just past the colon
        node = Node(path, "text", at, at, name, "", line=number, indent=" " * indent, empty_at=at)
        parent.children.append(node)
        stack.append(_Frame(node, None, key_indent=indent, line_start=start))  # the next line says what it is

    def place(self, stack: list[_Frame], indent: int, is_item: bool, number: int) -> _Frame:
        """The frame a line at `indent` belongs to, opening the pending `key:` above as a group or a list."""
        while True:
            top = stack[-1]
            if top.indent is None:  # the `key:` just above
                if indent >= top.key_indent:
                    self.open(stack, indent, is_item)
                    return stack[-1]
                stack.pop()  # nothing under it: an empty value
                continue
            if indent == top.indent and (is_item or top.node.kind != "list" or indent > top.key_indent):
                return top
            if len(stack) > 1 and (indent <= top.indent or (top.level and indent <= top.key_indent)):
                stack.pop()
                continue
            raise self.fail(number, indent + 1, "unexpected indentation")

    @staticmethod
    def open(stack: list[_Frame], indent: int, is_item: bool) -> None:
        top = stack.pop()
        node = top.node
        node.kind, node.value, node.empty_at = ("list" if is_item else "group"), None, None
        node.start = top.line_start
        top.indent = indent
        if indent == top.key_indent and not is_item:  # no indentation: a flat group
            under = stack[-1]
            top.level = under.level + 1 if under.level and under.indent == indent else 1
            if top.level > 2:  # a heading inside a section's group: that group's sibling
                stack.pop()
                under.node.children.remove(node)
                node.path = _join(stack[-1].node.path, node.key or "")
                stack[-1].node.children.append(node)
                top.level = 2
        stack.append(top)


# --- editing: one field's characters, every other byte as typed --------------------------------


def _encode(doc: Document, node: Node, value: str) -> str:
    """A new value as it is written in place of `node`'s."""
    if doc.form == JSON:
        if node.kind in ("number", "bool", "null"):
            try:
                literal = json.loads(value)
            except ValueError:
                literal = value
            if not isinstance(literal, (str, dict, list)):
                return json.dumps(literal)
        return json.dumps(value, ensure_ascii=False)
    if "\n" in value or "\r" in value:
        raise ParamsError(
            [f"field {node.path!r}: one line of text (a YAML-style value ends at the line's end)"]
        )
    value = value.strip()
    if node.empty_at is not None and value:
        return " " + value  # `key:` becomes `key: value`
    return value


def set_value(text: str, path: str, value: str) -> str:
    """The text with the field at `path` set to `value`: only that value's characters change."""
    doc = _require(text)
    node = doc.find(path)
    if not node.scalar:
        raise ParamsError([f"field {node.path!r} is a {node.kind}, not one value: choose one of its fields"])
    if node.text == value and not (doc.form == JSON and node.kind != "text"):
        return text
    return text[: node.start] + _encode(doc, node, value) + text[node.end :]


def add_item(text: str, path: str, value: str = "") -> str:
    """The text with one more item at the end of the list at `path` (a copy of the last one when the
    items are groups, so a person fills in the same keys)."""
    doc = _require(text)
    node = doc.find(path)
    if node.kind != "list":
        raise ParamsError([f"field {node.path!r} is not a list"])
    last = node.children[-1] if node.children else None
    if doc.form == JSON:
        new = (
            text[last.start : last.end]
            if last is not None and not last.scalar
            else json.dumps(value, ensure_ascii=False)
        )
        if last is None:
            return text[: node.start + 1] + new + text[node.start + 1 :]
        between = text[node.children[-2].end : last.start] if len(node.children) > 1 else None
        sep = ", "
        if between is not None and "\n" in between:
            sep = between[: between.index(",") + 1] if "," in between else ","
            sep += "\n" + last.indent
        elif "\n" in text[node.start : last.start]:
            sep = ",\n" + last.indent
        return text[: last.end] + sep + new + text[last.end :]
    if "\n" in value:
        raise ParamsError([f"field {node.path!r}: a list item is one line of text"])
    if last is None:  # `key:` just became a list
        return text[: node.end] + f"\n{node.indent}- {value.strip()}".rstrip() + text[node.end :]
    end = _line_end(text, last.end if last.scalar else node.end)
    if last.scalar:
        line_start = text.rfind("\n", 0, last.start) + 1
        item_indent = text[line_start : text.index("-", line_start)]
        block = f"{item_indent}- {value.strip()}".rstrip()
    else:
        line_start = text.rfind("\n", 0, last.start) + 1
        block = text[line_start:end]
    return text[:end] + "\n" + block + text[end:]


def remove_item(text: str, path: str) -> str:
    """The text without the list item at `path` (and its separator or its lines)."""
    doc = _require(text)
    node = doc.find(path)
    parent = next((n for n in doc.nodes() if node in n.children), None)
    if parent is None or parent.kind != "list":
        raise ParamsError([f"field {node.path!r} is not an item of a list"])
    if doc.form == JSON:
        i = parent.children.index(node)
        if i > 0:
            cut_from, cut_to = parent.children[i - 1].end, node.end
        elif len(parent.children) > 1:
            cut_from, cut_to = node.start, parent.children[1].start
        else:  # the only item: the list becomes []
            cut_from, cut_to = parent.start + 1, parent.end - 1
        return text[:cut_from] + text[cut_to:]
    line_start = text.rfind("\n", 0, node.start) + 1
    end = _line_end(text, node.end)
    if end < len(text):
        return text[:line_start] + text[end + 1 :]
    return text[: max(line_start - 1, 0)] + text[end:]


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _require(text: str) -> Document:
    doc = parse(text)
    if doc is None:
        raise ParamsError(
            ["the prompt has no fields: it is plain text, not JSON or YAML-style `key: value` lines"]
        )
    return doc


def value_at(text: str, path: str) -> str | None:
    """The text of the field at exactly `path`, None when the prompt has no such field (or none at all)."""
    doc = try_parse(text)
    if doc is None:
        return None
    node = {n.path: n for n in doc.fields()}.get(path)
    return None if node is None else node.text


@functools.lru_cache(maxsize=D.FIELD_LOOKUP_CACHE)
def lookup(text: str, path: str) -> str | None:
    """The text of the field at `path` (or at the one path ending with it), None when there is none:
    History's filter by a field's value asks this of each candidate run (many share one prompt)."""
    doc = try_parse(text)
    if doc is None:
        return None
    try:
        node = doc.find(path)
    except ParamsError:
        return None
    return node.text if node.scalar else None


def changed_fields(old: str, new: str) -> list[tuple[str, str | None, str | None]]:
    """`(path, old value, new value)` for each field that differs (None: not there), in the new text's
    order then the old one's; [] when either is not structured."""
    a, b = try_parse(old), try_parse(new)
    if a is None or b is None:
        return []
    before, after = a.values(), b.values()
    out: list[tuple[str, str | None, str | None]] = [
        (p, before.get(p), v) for p, v in after.items() if before.get(p) != v
    ]
    out += [(p, v, None) for p, v in before.items() if p not in after]
    return out


# --- reading values for a person: hex codes, words that must appear ---------------------------


def hex_codes(value: str) -> list[str]:
    return _HEX.findall(value)


def untied_hex(value: str) -> list[str]:
    """Hex codes a value gives with no object to colour ("#C4725A" alone, rather than "terracotta
    walls in hex #C4725A", as BFL's guide asks)."""
    codes = hex_codes(value)
    if not codes:
        return []
    words = re.sub(r"\bhex\b", "", _HEX.sub("", value), flags=re.IGNORECASE)
    return codes if not re.search(r"[A-Za-z]{2,}", words) else []


def quoted(value: str) -> list[str]:
    """The words in quotation marks: text that must appear in the image, exactly."""
    return [m.group(2) for m in _QUOTED.finditer(value) if m.group(2).strip()]


# --- the same content in another form ----------------------------------------------------------


def data(doc: Document) -> Any:
    """The prompt as plain data (YAML-style values are text)."""

    def conv(node: Node) -> Any:
        if node.kind == "group":
            return {c.key if c.key is not None else str(i): conv(c) for i, c in enumerate(node.children)}
        if node.kind == "list":
            return [conv(c) for c in node.children]
        return node.value

    return conv(doc.root)


def _words(key: str) -> str:
    return key.replace("_", " ").replace("-", " ")


def render(text: str, form: str) -> str:
    """The same content as JSON, as YAML (indented) or as flattened prose."""
    if form not in FORMS:
        raise ParamsError([f"prompt form {form!r}: allowed {', '.join(FORMS)}"])
    doc = _require(text)
    if form == "json":
        return json.dumps(data(doc), indent=2, ensure_ascii=False)
    if form == "yaml":
        lines: list[str] = []

        def emit(node: Node, indent: str) -> None:
            for child in node.children:
                head = f"{indent}{child.key}:" if node.kind == "group" else f"{indent}-"
                if child.scalar:
                    lines.append(f"{head} {_yaml_scalar(child)}".rstrip())
                elif node.kind == "list" and child.kind == "group":
                    first = len(lines)
                    emit(child, indent + "  ")
                    if len(lines) > first:
                        lines[first] = f"{indent}- {lines[first].lstrip()}"
                else:
                    lines.append(head)
                    emit(child, indent + ("  " if node.kind == "group" else "  "))

        emit(doc.root, "")
        return "\n".join(lines)

    def say(node: Node) -> str:
        if node.scalar:
            return _yaml_scalar(node)
        parts = [say(c) if c.key is None else f"{_words(c.key)}: {say(c)}" for c in node.children]
        if node.kind == "list":
            return ", ".join(p for p in parts if p)
        return "; ".join(p for p in parts if p)

    sentences = []
    for child in doc.root.children:
        body = say(child)
        label = _words(child.key) if child.key is not None else ""
        sentences.append(f"{label[:1].upper()}{label[1:]}: {body}." if label else f"{body}.")
    return " ".join(sentences)


def _yaml_scalar(node: Node) -> str:
    if node.kind == "null":
        return "null"
    return node.text
