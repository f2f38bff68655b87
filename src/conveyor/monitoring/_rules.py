"""Alert rules: a small grammar, parsed (never ``eval``-ed).

::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" or_expr ")" | comparison
    comparison := metric OP NUMBER          OP: > >= < <= == !=
    metric     := NAME [ "(" COLUMN ")" ]   COLUMN: a name or a "quoted name"

Examples: ``drift_share > 0.3``, ``accuracy < 0.85``, ``missing_rate(age) > 0.05``,
``p95_latency_ms > 50``, ``drifted("zip code") == 1 and rows >= 500``.

A rule whose metric has no value in an evaluation (no labels yet, an empty window) does
not fire; its result says ``no data``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import FilterSyntaxError, InvalidInput

#: Metrics a rule can name; the ones marked (column) take a column argument.
METRICS = {
    "drift_share": "share of drifted features (0–1)",
    "n_drifted": "number of drifted features",
    "dataset_drift": "1 when the share of drifted features reaches drift_share",
    "prediction_drift": "1 when the prediction column drifted",
    "label_drift": "1 when the label drifted",
    "drift": "(column) the column's drift statistic (p-value or distance)",
    "drifted": "(column) 1 when the column drifted",
    "missing_rate": "(column) share of missing values in the window",
    "new_category_rate": "(column) share of rows holding categories unseen in the reference",
    "out_of_range_rate": "(column) share of values outside the reference's range",
    "rows": "rows in the window",
    "labelled_rows": "rows of the window with a feedback label",
    "accuracy": "live accuracy (classification)",
    "f1": "live F1 (binary: of the positive class; else macro)",
    "roc_auc": "live ROC AUC (binary, needs a score column)",
    "precision": "live precision",
    "recall": "live recall",
    "mae": "live mean absolute error (regression)",
    "rmse": "live root mean squared error (regression)",
    "p50_latency_ms": "median serving latency",
    "p95_latency_ms": "95th percentile serving latency",
    "p99_latency_ms": "99th percentile serving latency",
}
COLUMN_METRICS = frozenset({"drift", "drifted", "missing_rate", "new_category_rate", "out_of_range_rate"})
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<op>>=|<=|==|!=|>|<)|(?P<paren>[()])"
    r"|(?P<str>\"[^\"]*\"|'[^']*')|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*))"
)


@dataclass(frozen=True)
class Comparison:
    metric: str
    column: str | None
    op: str
    number: float

    @property
    def key(self) -> str:
        return f"{self.metric}({self.column})" if self.column is not None else self.metric


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool
    value: float | None
    status: str  # fired | ok | no data

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "fired": self.fired, "value": self.value, "status": self.status}


@dataclass(frozen=True)
class Rule:
    """A parsed rule; ``evaluate(metrics)`` looks values up by ``metric`` or ``metric(column)``."""

    text: str
    tree: Any

    def evaluate(self, metrics: Mapping[str, Any]) -> RuleResult:
        fired, value, missing = _eval(self.tree, metrics)
        if missing and not fired:
            return RuleResult(self.text, False, value, "no data")
        return RuleResult(self.text, fired, value, "fired" if fired else "ok")

    def comparisons(self) -> list[Comparison]:
        return list(_walk(self.tree))


def parse_rule(text: str) -> Rule:
    """Parse ``text`` into a ``Rule``; errors point at the offending position.

    Example::

        parse_rule("missing_rate(age) > 0.05").evaluate({"missing_rate(age)": 0.1}).fired  # True
    """
    tokens = _tokenize(text)
    parser = _Parser(text, tokens)
    tree = parser.or_expr()
    if parser.i != len(tokens):
        parser.fail("unexpected text after the rule")
    return Rule(text, tree)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            raise FilterSyntaxError("unexpected character in rule", text=text, position=pos,
                                    hint="a rule looks like `drift_share > 0.3` or `missing_rate(age) > 0.05`")
        kind = match.lastgroup or ""
        value = match.group(kind)
        out.append((kind, value, match.start(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text, self.tokens, self.i = text, tokens, 0

    def fail(self, message: str) -> None:
        pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise FilterSyntaxError(message, text=self.text, position=pos,
                                hint="a rule looks like `drift_share > 0.3` or `missing_rate(age) > 0.05`")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in words:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if not tok or tok[0] != kind or (value is not None and tok[1] != value):
            self.fail(f"expected {value or {'num': 'a number', 'op': 'a comparison (> >= < <= == !=)'}.get(kind, kind)}")
        self.i += 1
        return tok[1]  # type: ignore[index]

    def or_expr(self) -> Any:
        parts = [self.and_expr()]
        while self.word("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self) -> Any:
        parts = [self.unary()]
        while self.word("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def unary(self) -> Any:
        if self.word("not"):
            return BoolOp("not", (self.unary(),))
        tok = self.peek()
        if tok and tok[0] == "paren" and tok[1] == "(":
            self.i += 1
            inner = self.or_expr()
            self.expect("paren", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        start = self.i
        name = self.expect("name")
        if name not in METRICS:
            self.i = start
            self.fail(f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})")
        column = None
        tok = self.peek()
        if tok and tok[0] == "paren" and tok[1] == "(":
            self.i += 1
            tok = self.peek()
            if not tok or tok[0] not in ("name", "str"):
                self.fail("expected a column name")
            column = tok[1].strip("\"'")  # type: ignore[index]
            self.i += 1
            self.expect("paren", ")")
        if (column is None) == (name in COLUMN_METRICS):
            self.i = start
            self.fail(f"{name} needs a column, like {name}(age)" if column is None else f"{name} takes no column")
        op = self.expect("op")
        number = float(self.expect("num"))
        return Comparison(name, column, op, number)


def _eval(node: Any, metrics: Mapping[str, Any]) -> tuple[bool, float | None, bool]:
    if isinstance(node, Comparison):
        value = metrics.get(node.key)
        if value is None or (isinstance(value, float) and value != value):
            return False, None, True
        value = float(value)
        return OPS[node.op](value, node.number), value, False
    results = [_eval(p, metrics) for p in node.parts]
    missing = any(r[2] for r in results)
    value = results[0][1] if len(results) == 1 else None
    if node.op == "not":
        return (not results[0][0]) and not missing, value, missing
    fired = all(r[0] for r in results) if node.op == "and" else any(r[0] for r in results)
    return fired, value, missing


def _walk(node: Any) -> Any:
    if isinstance(node, Comparison):
        yield node
    else:
        for part in node.parts:
            yield from _walk(part)


def parse_rules(texts: list[str], *, field: str = "rules") -> list[Rule]:
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise InvalidInput(f"a rule must be a string, not {text!r}", field=field, value=text)
        out.append(parse_rule(text))
    return out
