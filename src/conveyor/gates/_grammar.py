"""Thresholds such as ``f1 >= champion.f1 - 0.01``, parsed by a small recursive-descent
grammar (never ``eval``)::

    threshold := ref CMP expr
    expr      := term (("+" | "-") term)*
    term      := unary (("*" | "/") unary)*
    unary     := "-" unary | atom
    atom      := NUMBER | ref | "(" expr ")"
    ref       := [("candidate" | "champion" | "baseline") "."] METRIC
    CMP       := ">=" | "<=" | ">" | "<"

A bare metric means the candidate's. A threshold naming ``champion`` (or ``baseline``) is
*skipped* when there is none, so the first model becomes champion on absolute thresholds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import InvalidInput

SUBJECTS = ("candidate", "champion", "baseline")
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)|(>=|<=|>|<|[-+*/()]))")
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


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if match is None:
                self.fail(f"unexpected character {stripped[pos:].lstrip()[:1]!r}", pos)
            assert match is not None
            number, name, symbol = match.groups()
            start = match.start(match.lastindex or 0)
            if number is not None:
                self.tokens.append(("num", number, start))
            elif name is not None:
                self.tokens.append(("name", name, start))
            else:
                self.tokens.append(("sym", symbol, start))
            pos = match.end()
        self.i = 0

    def fail(self, message: str, position: int | None = None) -> None:
        where = len(self.text) if position is None else position
        raise InvalidInput(
            f"threshold {self.text!r} in {self.field}: {message} at position {where}",
            field=self.field, value=self.text,
            hint="write e.g. 'f1 >= 0.8' or 'f1 >= champion.f1 - 0.01'",
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            self.fail("unexpected end")
        assert token is not None
        self.i += 1
        return token

    def threshold(self) -> Threshold:
        kind, value, pos = self.take()
        subject, metric = _split_ref(value) if kind == "name" else ("", "")
        if kind != "name" or subject != "candidate":
            self.fail("the left side must be a metric of the candidate", pos)
        kind, op, pos = self.take()
        if op not in _COMPARE:
            self.fail(f"expected one of >=, <=, >, < but found {op!r}", pos)
        rhs = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r}", self.peek()[2])  # type: ignore[index]
        return Threshold(self.text, metric, op, rhs)

    def expr(self) -> Node:
        node = self.term()
        while (token := self.peek()) is not None and token[1] in ("+", "-") and token[0] == "sym":
            self.i += 1
            node = (token[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while (token := self.peek()) is not None and token[1] in ("*", "/") and token[0] == "sym":
            self.i += 1
            node = (token[1], node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token[:2] == ("sym", "-"):
            self.i += 1
            return ("neg", self.unary())
        return self.atom()

    def atom(self) -> Node:
        kind, value, pos = self.take()
        if kind == "num":
            return ("num", float(value))
        if kind == "name":
            subject, metric = _split_ref(value)
            if subject not in SUBJECTS:
                self.fail(f"unknown subject {subject!r} (use candidate, champion or baseline)", pos)
            return ("ref", subject, metric)
        if value == "(":
            node = self.expr()
            closing = self.take()
            if closing[1] != ")":
                self.fail("expected ')'", closing[2])
            return node
        self.fail(f"unexpected {value!r}", pos)
        raise AssertionError  # unreachable


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
