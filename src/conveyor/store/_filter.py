"""The run filter language, parsed by a real grammar (lark, LALR).

    metrics.acc > 0.9 and params.model = 'rf' and tags.team = "x"
    (metrics.f1 >= 0.8 or not status = 'FAILED') and name like 'sweep-%'
    params.C in ('0.1', '1') and tags.owner is not null
    metrics.`val loss` < 0.2

The result is a small AST (``Compare``, ``And``, ``Or``, ``Not``) that ``_search`` turns into
SQL with every value bound as a parameter; nothing of the text is ever pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from conveyor.errors import FilterSyntaxError

Kind = Literal["metric", "param", "tag", "attribute"]

ATTRIBUTES = {
    "run_id": "id",
    "id": "id",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "user": "user",
    "host": "host",
    "experiment": "experiment",
    "experiment_id": "experiment_id",
    "start_time": "start_time",
    "end_time": "end_time",
    "parent_id": "parent_id",
    "git_commit": "git_commit",
    "git_branch": "git_branch",
    "entry_point": "entry_point",
}
NUMERIC_ATTRIBUTES = {"start_time", "end_time", "experiment_id"}
_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> not_
         | atom
?atom: comparison
     | "(" or_expr ")"
comparison: field OP value                          -> compare
          | field _IN "(" value ("," value)* ")"     -> in_
          | field _NOT _IN "(" value ("," value)* ")" -> not_in
          | field _IS _NULL                          -> is_null
          | field _IS _NOT _NULL                     -> is_not_null
order: order_item ("," order_item)*
order_item: field DIRECTION?
field: FIELD
?value: SIGNED_NUMBER -> number
      | STRING        -> string
      | _TRUE         -> true
      | _FALSE        -> false

FIELD.2: /[A-Za-z_][A-Za-z0-9_]*(\.(`[^`]+`|"[^"]+"|[A-Za-z0-9_\-\/:]+))*/
OP: "!=" | "<>" | "==" | "=" | "<=" | ">=" | "<" | ">" | /(?i:ilike)\b/ | /(?i:like)\b/
DIRECTION: /(?i:asc|desc)\b/
STRING: /'(?:[^'\\]|\\.|'')*'/ | /"(?:[^"\\]|\\.)*"/
_AND.3: /(?i:and)\b/
_OR.3: /(?i:or)\b/
_NOT.3: /(?i:not)\b/
_IN.3: /(?i:in)\b/
_IS.3: /(?i:is)\b/
_NULL.3: /(?i:null)\b/
_TRUE.3: /(?i:true)\b/
_FALSE.3: /(?i:false)\b/
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""


@dataclass(frozen=True)
class Field:
    kind: Kind
    key: str
    position: int


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # = != < <= > >= like ilike in not_in is_null is_not_null
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Compare | And | Or | Not


@cache
def _parser() -> Any:
    from lark import Lark

    return Lark(_GRAMMAR, start=["start", "order"], parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_filter(text: str) -> Node | None:
    """Parse a filter; an empty one means "every run"."""
    if not text or not text.strip():
        return None
    return _build(_parse(text, "start"), text)


def parse_order_by(items: list[str] | tuple[str, ...]) -> list[tuple[Field, bool]]:
    """``["metrics.acc desc", "start_time"]`` → [(field, descending), …]."""
    out: list[tuple[Field, bool]] = []
    for item in items:
        tree = _parse(item, "order")
        for child in tree.children:
            field = _field(child.children[0].children[0], item)
            descending = len(child.children) > 1 and str(child.children[1]).lower() == "desc"
            out.append((field, descending))
    return out


def _parse(text: str, start: str) -> Any:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        return _parser().parse(text, start=start)
    except UnexpectedEOF as exc:
        raise FilterSyntaxError(
            "the filter ends too early", text=text, position=len(text), hint=_expected(exc.expected)
        ) from None
    except UnexpectedToken as exc:
        position = exc.token.start_pos if exc.token.start_pos is not None else len(text)
        if exc.token.type == "$END":
            position = len(text)
        found = "the end" if exc.token.type == "$END" else repr(str(exc.token))
        raise FilterSyntaxError(
            f"unexpected {found}", text=text, position=position, hint=_expected(exc.expected)
        ) from None
    except UnexpectedCharacters as exc:
        raise FilterSyntaxError(
            f"unexpected character {text[exc.pos_in_stream]!r}", text=text, position=exc.pos_in_stream
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above are exhaustive for LALR
        raise FilterSyntaxError("cannot parse the filter", text=text, position=exc.pos_in_stream or 0) from None


_NAMES = {
    "FIELD": "a field such as metrics.acc",
    "OP": "a comparison (= != < <= > >= like ilike)",
    "SIGNED_NUMBER": "a number",
    "STRING": "a quoted string",
    "_AND": "and",
    "_OR": "or",
    "_IN": "in",
    "_IS": "is",
    "RPAR": ")",
    "LPAR": "(",
}


def _expected(expected: Any) -> str:
    names = sorted({_NAMES.get(str(e), str(e).lower().strip("_")) for e in expected or ()})
    return "expected " + ", ".join(names) if names else "check the filter syntax"


def _field(token: Any, text: str) -> Field:
    raw = str(token)
    position = token.start_pos or 0
    prefix, _, rest = raw.partition(".")
    if not rest:
        if prefix.lower() in ATTRIBUTES:
            return Field("attribute", ATTRIBUTES[prefix.lower()], position)
        raise FilterSyntaxError(
            f"unknown field {raw!r}",
            text=text,
            position=position,
            hint="use metrics.<key>, params.<key>, tags.<key> or one of " + ", ".join(sorted(ATTRIBUTES)),
        )
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise FilterSyntaxError(
            f"unknown field prefix {prefix!r}",
            text=text,
            position=position,
            hint="use metrics., params., tags. or attributes.",
        )
    if rest[:1] in "`\"" and rest[-1:] == rest[:1]:
        rest = rest[1:-1]
    if kind == "attribute":
        if rest.lower() not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"unknown attribute {rest!r}", text=text, position=position, hint="known: " + ", ".join(sorted(ATTRIBUTES))
            )
        rest = ATTRIBUTES[rest.lower()]
    return Field(kind, rest, position)


def _value(tree: Any) -> Any:
    kind = tree.data
    if kind == "number":
        raw = str(tree.children[0])
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    if kind == "string":
        raw = str(tree.children[0])
        quote = raw[0]
        body = raw[1:-1].replace(quote * 2, quote) if quote == "'" else raw[1:-1]
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in body else body
    return kind == "true"


def _build(tree: Any, text: str) -> Node:
    data = tree.data
    if data == "or_expr":
        return Or(tuple(_build(c, text) for c in tree.children))
    if data == "and_expr":
        return And(tuple(_build(c, text) for c in tree.children))
    if data == "not_":
        return Not(_build(tree.children[0], text))
    field = _field(tree.children[0].children[0], text)
    if data == "compare":
        op = str(tree.children[1]).lower()
        op = {"==": "=", "<>": "!="}.get(op, op)
        node = Compare(field, op, _value(tree.children[2]))
    elif data in ("in_", "not_in"):
        node = Compare(field, "in" if data == "in_" else "not_in", tuple(_value(c) for c in tree.children[1:]))
    else:
        node = Compare(field, data, None)
    _check(node, text)
    return node


def _check(node: Compare, text: str) -> None:
    field, op, value = node.field, node.op, node.value
    numeric = field.kind == "metric" or (field.kind == "attribute" and field.key in NUMERIC_ATTRIBUTES)
    values = value if isinstance(value, tuple) else (value,)
    if numeric:
        if op in ("like", "ilike"):
            raise FilterSyntaxError(
                f"{op} needs text, but {field.key!r} is a number", text=text, position=field.position
            )
        if op not in ("is_null", "is_not_null") and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise FilterSyntaxError(
                f"{field.kind} {field.key!r} is a number; compare it with a number",
                text=text,
                position=field.position,
                hint="write e.g. metrics.acc > 0.9 (no quotes)",
            )
    elif op in ("<", "<=", ">", ">="):
        raise FilterSyntaxError(
            f"{field.kind} {field.key!r} is text: use = != like ilike in",
            text=text,
            position=field.position,
            hint="params and tags are stored as strings",
        )
