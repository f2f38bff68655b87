"""Alert rules: a small lark grammar, parsed (never ``eval``-ed).

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
not fire; its result says ``no data``. Rules nest at most ``MAX_DEPTH`` levels of
and/or/not (a deeper one is an error, not a crash).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
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
    "p95_latency_ratio": "p95 latency over the previous evaluation's (computing-performance regression)",
    "skew_mismatch_rate": "share of sampled logged rows whose re-prediction with the package differs (skew)",
    "skew_rows": "logged rows re-predicted for the skew check",
    "nonfinite_prediction_rate": "share of predictions that are missing, NaN or infinite",
    "model_age_days": "days since the served version was registered (staleness)",
    "new_data_versions": "versions of the served version's training data sets added since it was trained "
                         "(an upstream dependency changed)",
    "score_drift": "1 when the model's scores drifted: its class probabilities (any class; binary: the positive "
                   "class's) or a regressor's outputs, on the window's inputs vs the reference's",
    "score_drift_value": "the score drift statistic (p-value or distance) of a binary classifier's positive-class "
                         "probability or a regressor's output",
    "class_score_drift": "(column) 1 when the predicted probability of that class drifted",
}
COLUMN_METRICS = frozenset({"drift", "drifted", "missing_rate", "new_category_rate", "out_of_range_rate",
                            "class_score_drift"})
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
MAX_DEPTH = 50
_HINT = "a rule looks like `drift_share > 0.3` or `missing_rate(age) > 0.05`"
_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND unary)*
?unary: _NOT unary      -> not_
      | "(" or_expr ")"
      | comparison
comparison: NAME column? OP NUMBER
column: "(" (NAME | STRING) ")"
OP: ">=" | "<=" | "==" | "!=" | ">" | "<"
NUMBER: /-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/
STRING: /"[^"]*"|'[^']*'/
_OR.2: /(?i:or)\b/
_AND.2: /(?i:and)\b/
_NOT.2: /(?i:not)\b/
NAME: /[A-Za-z_][A-Za-z0-9_.\-]*/
%import common.WS
%ignore WS
"""


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
    from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    try:
        tree = _lark().parse(text)
    except UnexpectedToken as exc:
        expected = set(exc.expected or ())
        position = len(text) if exc.token.type == "$END" else exc.token.start_pos or 0
        if expected & {"$END", "_AND", "_OR"} and exc.token.type != "$END":
            _fail(text, "unexpected text after the rule", position)
        if "NUMBER" in expected:
            _fail(text, "expected a number", position)
        if "OP" in expected:
            _fail(text, "expected a comparison (> >= < <= == !=)", position)
        if "NAME" in expected and "STRING" in expected:
            _fail(text, "expected a column name", position)
        if "RPAR" in expected:
            _fail(text, "expected )", position)
        _fail(text, "expected a metric such as drift_share" if "NAME" in expected else "unexpected text", position)
    except UnexpectedCharacters as exc:
        position = exc.pos_in_stream
        raise FilterSyntaxError("unexpected character in rule", text=text, position=position, hint=_HINT) from None
    except UnexpectedInput as exc:  # pragma: no cover - the two above cover LALR
        _fail(text, "cannot parse the rule", exc.pos_in_stream or 0)
    return Rule(text, _build(tree, text, 0))


@cache
def _lark() -> Any:
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True)


def _fail(text: str, message: str, position: int) -> None:
    raise FilterSyntaxError(message, text=text, position=position, hint=_HINT)


def _build(tree: Any, text: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        _fail(text, f"the rule nests deeper than {MAX_DEPTH} levels of and/or/not", tree.meta.start_pos or 0)
    kind = tree.data
    if kind in ("or_expr", "and_expr"):
        return BoolOp(kind[:-5] if kind == "and_expr" else "or", tuple(_build(c, text, depth + 1) for c in tree.children))
    if kind == "not_":
        return BoolOp("not", (_build(tree.children[0], text, depth + 1),))
    name, *rest = tree.children
    column = None
    if len(rest) == 3:
        column = str(rest[0].children[0]).strip("\"'")
        rest = rest[1:]
    op, number = rest
    metric = str(name)
    if metric not in METRICS:
        _fail(text, f"unknown metric {metric!r} (known: {', '.join(sorted(METRICS))})", name.start_pos or 0)
    if (column is None) == (metric in COLUMN_METRICS):
        _fail(text, f"{metric} needs a column, like {metric}(age)" if column is None else f"{metric} takes no column",
              name.start_pos or 0)
    return Comparison(metric, column, str(op), float(number))


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
