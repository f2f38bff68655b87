"""Thresholds such as ``f1 >= champion.f1 - 0.01``, parsed by a lark LALR grammar (never
``eval``)::

    threshold := ref CMP expr
    expr      := term (("+" | "-") term)*
    term      := unary (("*" | "/") unary)*
    unary     := "-" unary | atom
    atom      := NUMBER | ref | "(" expr ")"
    ref       := [("candidate" | "champion" | "baseline") "."] METRIC
    CMP       := ">=" | "<=" | ">" | "<"

A bare metric means the candidate's. A threshold naming ``champion`` (or ``baseline``) is
*skipped* when there is none, so the first model becomes champion on absolute thresholds.
Expressions nest at most ``MAX_DEPTH`` levels (a deeper one is an error, not a crash).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from conveyor.errors import InvalidInput

SUBJECTS = ("candidate", "champion", "baseline")
MAX_DEPTH = 50
_GRAMMAR = r"""
start: NAME CMP expr
?expr: term
     | expr "+" term   -> add
     | expr "-" term   -> sub
?term: unary
     | term "*" unary  -> mul
     | term "/" unary  -> div
?unary: "-" unary      -> neg
      | atom
?atom: NUMBER          -> num
     | NAME            -> ref
     | "(" expr ")"
CMP: ">=" | "<=" | ">" | "<"
NAME: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?/
NUMBER: /(\d+(\.\d*)?([eE][-+]?\d+)?|\.\d+)/
%import common.WS
%ignore WS
"""
_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}

# An expression tree: ("num", x) | ("ref", subject, metric) | ("neg", e) | (op, left, right)
Node = tuple[Any, ...]


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold; ``text`` is what the user wrote."""

    text: str
    metric: str
    op: str
    rhs: Node

    @property
    def refs(self) -> set[tuple[str, str]]:
        return {("candidate", self.metric)} | _refs(self.rhs)

    @property
    def subjects(self) -> set[str]:
        return {subject for subject, _ in self.refs}

    def bound(self, values: Mapping[str, Mapping[str, float] | None]) -> float | None:
        """The right-hand side's value, or ``None`` when it names a missing subject."""
        return _value(self.rhs, values)

    def check(self, values: Mapping[str, Mapping[str, float] | None]) -> tuple[bool | None, float | None, float | None]:
        """(passed or None when skipped, candidate value, bound)."""
        bound = self.bound(values)
        actual = (values.get("candidate") or {}).get(self.metric)
        if bound is None or actual is None:
            return None, actual, bound
        return _COMPARE[self.op](actual, bound), actual, bound


def _refs(node: Node) -> set[tuple[str, str]]:
    if node[0] == "ref":
        return {(node[1], node[2])}
    if node[0] == "num":
        return set()
    return set().union(*(_refs(child) for child in node[1:]))


def _value(node: Node, values: Mapping[str, Mapping[str, float] | None]) -> float | None:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "ref":
        table = values.get(node[1])
        return None if table is None or node[2] not in table else float(table[node[2]])
    if kind == "neg":
        inner = _value(node[1], values)
        return None if inner is None else -inner
    left, right = _value(node[1], values), _value(node[2], values)
    if left is None or right is None:
        return None
    if kind == "/" and right == 0:
        return float("inf") if left > 0 else float("-inf")
    return _ARITH[kind](left, right)


@cache
def _lark() -> Any:
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True)


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field

    def fail(self, message: str, position: int | None = None) -> None:
        where = len(self.text) if position is None else position
        raise InvalidInput(
            f"threshold {self.text!r} in {self.field}: {message} at position {where}",
            field=self.field, value=self.text,
            hint="write e.g. 'f1 >= 0.8' or 'f1 >= champion.f1 - 0.01'",
        )

    def threshold(self) -> Threshold:
        from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

        try:
            tree = _lark().parse(self.text)
        except UnexpectedToken as exc:
            token = exc.token
            if token.type == "$END":
                self.fail("unexpected end")
            if (token.start_pos or 0) == self.text.index(self.text.lstrip()[:1]):
                self.fail("the left side must be a metric of the candidate", token.start_pos)
            if "CMP" in (exc.expected or ()):
                self.fail(f"expected one of >=, <=, >, < but found {str(token)!r}", token.start_pos)
            self.fail(f"unexpected {str(token)!r}", token.start_pos)
        except UnexpectedCharacters as exc:
            self.fail(f"unexpected character {self.text[exc.pos_in_stream]!r}", exc.pos_in_stream)
        except UnexpectedInput as exc:  # pragma: no cover - the two above cover LALR
            self.fail("cannot parse", exc.pos_in_stream)
        name, op, rhs = tree.children
        subject, metric = _split_ref(str(name))
        if subject != "candidate":
            self.fail("the left side must be a metric of the candidate", name.start_pos)
        return Threshold(self.text, metric, str(op), self.node(rhs, 0))

    def node(self, tree: Any, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail(f"the expression nests deeper than {MAX_DEPTH} levels", _start(tree))
        kind = tree.data
        if kind == "num":
            return ("num", float(tree.children[0]))
        if kind == "ref":
            token = tree.children[0]
            subject, metric = _split_ref(str(token))
            if subject not in SUBJECTS:
                self.fail(f"unknown subject {subject!r} (use candidate, champion or baseline)", token.start_pos)
            return ("ref", subject, metric)
        if kind == "neg":
            return ("neg", self.node(tree.children[0], depth + 1))
        left, right = tree.children
        return (_OPS[kind], self.node(left, depth + 1), self.node(right, depth + 1))


def _start(tree: Any) -> int | None:
    meta = getattr(tree, "meta", None)
    return getattr(meta, "start_pos", None) if meta is not None and not meta.empty else None


def _split_ref(name: str) -> tuple[str, str]:
    subject, dot, metric = name.partition(".")
    return (subject, metric) if dot else ("candidate", name)


def parse_threshold(text: str, *, field: str = "threshold", known: set[str] | None = None) -> Threshold:
    """Parse ``"f1 >= champion.f1 - 0.01"``; ``known`` metric names are enforced, naming ``field``.

    Example::

        t = parse_threshold("f1 >= champion.f1 - 0.01")
        t.check({"candidate": {"f1": 0.9}, "champion": {"f1": 0.905}})   # (True, 0.9, 0.895)
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"threshold {text!r} in {field} is empty", field=field, value=text)
    parsed = _Parser(text, field).threshold()
    if known is not None:
        unknown = sorted({metric for _, metric in parsed.refs} - known)
        if unknown:
            raise InvalidInput(
                f"threshold {text!r} in {field} names unknown metric {', '.join(map(repr, unknown))}",
                field=field, value=text, hint=f"known metrics: {', '.join(sorted(known))}",
            )
    return parsed
