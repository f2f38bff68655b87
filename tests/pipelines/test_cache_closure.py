"""The cache key covers every module-level value a step's code reaches (issue 11, item 1).

Each variant of a step module is written into its own folder under the same module name,
so the key sees a freshly imported module (no stale bytecode or line cache) and differs
only by what the edit changed.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.pipelines import run
from conveyor.pipelines._cache import cache_key

PREAMBLE = "import conveyor.pipelines as cp\nfrom conveyor.pipelines import step, pipeline\n"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``keyed({"mod": source, ...}, step="mod:name")`` → the step's cache key, each call in a
    fresh folder (the same module names, imported anew)."""
    count = [0]
    added: list[str] = []
    names: set[str] = set()

    def make(files: dict[str, str], step: str = "steps:total", exclude_check: bool = False) -> str:
        count[0] += 1
        folder = tmp_path / f"v{count[0]}"
        folder.mkdir()
        for name, source in files.items():
            (folder / f"{name}.py").write_text(PREAMBLE + textwrap.dedent(source), encoding="utf-8")
            sys.modules.pop(name, None)
            names.add(name)
        for old in added:
            if old in sys.path:
                sys.path.remove(old)
        sys.path.insert(0, str(folder))
        added.append(str(folder))
        importlib.invalidate_caches()
        module_name, _, attr = step.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        return cache_key(step=target, params={}, inputs={}, roots=(str(folder),))

    yield make
    for old in added:
        if old in sys.path:
            sys.path.remove(old)
    for name in names:
        sys.modules.pop(name, None)


STEP_READS_CONSTANT = """
THRESHOLD = {threshold}
UNUSED = {unused}

@step
def total(rows: list = [1, 2, 3]) -> dict:
    return {{"above": [r for r in rows if r > THRESHOLD]}}
"""


def test_a_constant_the_step_reads_is_in_the_key(keyed: Callable[..., str]) -> None:
    base = keyed({"steps": STEP_READS_CONSTANT.format(threshold=10, unused=1)})
    assert keyed({"steps": STEP_READS_CONSTANT.format(threshold=99, unused=1)}) != base
    # a value the step does not reach leaves the key alone
    assert keyed({"steps": STEP_READS_CONSTANT.format(threshold=10, unused=2)}) == base


HELPER = """
FACTOR = {factor}
OTHER = {other}

def scale(x):
    return x * FACTOR
"""

STEP_CALLS_HELPER = """
import helpers

@step
def total(rows: list) -> dict:
    return {"total": helpers.scale(sum(rows))}
"""


def test_a_constant_a_called_helper_reads_is_in_the_key(keyed: Callable[..., str]) -> None:
    base = keyed({"helpers": HELPER.format(factor=2, other=0), "steps": STEP_CALLS_HELPER})
    assert keyed({"helpers": HELPER.format(factor=5, other=0), "steps": STEP_CALLS_HELPER}) != base
    assert keyed({"helpers": HELPER.format(factor=2, other=7), "steps": STEP_CALLS_HELPER}) == base


@pytest.mark.parametrize(("template", "before", "after"), [
    # a container read through a subscript
    ("LIMITS = {{'low': {v}, 'high': 100}}\n@step\ndef total(x: int) -> int:\n    return x + LIMITS['low']\n", 1, 2),
    # a dataclass instance built from a module constant
    ("import dataclasses\nN = {v}\n@dataclasses.dataclass(frozen=True)\nclass Config:\n    depth: int = 3\n"
     "CONFIG = Config(depth=N)\n@step\ndef total(x: int) -> int:\n    return x + CONFIG.depth\n", 3, 4),
    # an enum whose member value changes
    ("import enum\nclass Mode(enum.Enum):\n    FAST = {v}\n    SLOW = 2\nDEFAULT = Mode.FAST\n"
     "@step\ndef total(x: int) -> int:\n    return x + DEFAULT.value\n", 1, 5),
    # a default argument evaluated from a constant at definition time
    ("LIMIT = {v}\ndef clip(x, top=LIMIT):\n    return min(x, top)\n@step\ndef total(x: int) -> int:\n"
     "    return clip(x)\n", 10, 20),
    # a closure over a value
    ("def make(k):\n    def times(x):\n        return x * k\n    return times\nTIMES = make({v})\n"
     "@step\ndef total(x: int) -> int:\n    return TIMES(x)\n", 3, 4),
    # a class attribute set from a module constant (the class source does not show it)
    ("BASE = {v}\nclass Rule:\n    base = BASE\n    def apply(self, x):\n        return x + self.base\n"
     "@step\ndef total(x: int) -> int:\n    return Rule().apply(x)\n", 1, 2),
    # a NumPy array of weights
    ("import numpy as np\nWEIGHTS = np.array([1.0, {v}])\n@step\ndef total(x: float) -> float:\n"
     "    return float((WEIGHTS * x).sum())\n", 2.0, 2.5),
    # a functools.partial with a bound keyword
    ("import functools\ndef power(x, e):\n    return x ** e\nSQUARE = functools.partial(power, e={v})\n"
     "@step\ndef total(x: int) -> int:\n    return SQUARE(x)\n", 2, 3),
], ids=["dict", "dataclass", "enum", "default-argument", "closure", "class-attribute", "numpy", "partial"])
def test_every_kind_of_reached_value_is_in_the_key(
    keyed: Callable[..., str], template: str, before: Any, after: Any
) -> None:
    base = keyed({"steps": template.format(v=before)})
    assert keyed({"steps": template.format(v=before)}) == base  # stable across imports
    assert keyed({"steps": template.format(v=after)}) != base


def test_a_value_without_a_fingerprint_is_refused_by_name(keyed: Callable[..., str]) -> None:
    from conveyor.pipelines._cache import Unfingerprintable

    source = "import threading\nLOCK = threading.Lock()\n@step{opts}\ndef total(x: int) -> int:\n" \
             "    with LOCK:\n        return x\n"
    with pytest.raises(Unfingerprintable) as caught:
        keyed({"steps": source.format(opts="")})
    assert caught.value.name == "LOCK" and "lock" in caught.value.type_name.lower()
    # declared as not affecting the result: the key skips it
    assert keyed({"steps": source.format(opts="(cache_exclude=('LOCK',))")}).startswith("blake3:")


# -- the property: an edit to a value the step reads changes the key; any other edit does not -----------
_scalars = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.booleans(), st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.frozensets(st.integers(-5, 5), max_size=3),
    ),
    max_leaves=8,
)


def _module(values: list[Any], direct: set[int], via_helper: set[int]) -> str:
    lines = [f"C{i} = {v!r}" for i, v in enumerate(values)]
    helper_reads = " + ".join(f"repr(C{i})" for i in sorted(via_helper)) or "''"
    step_reads = " + ".join(f"repr(C{i})" for i in sorted(direct)) or "''"
    lines += [
        "def helper():", f"    return {helper_reads}",
        "def unrelated():", "    return " + (" + ".join(f"repr(C{i})" for i in range(len(values)))),
        "@step", "def total() -> str:", f"    return helper() + {step_reads}",
    ]
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_edits_to_reached_values_and_only_those_change_the_key(
    keyed: Callable[..., str], data: st.DataObject
) -> None:
    values = data.draw(st.lists(_values, min_size=2, max_size=6), label="values")
    indices = list(range(len(values)))
    direct = set(data.draw(st.sets(st.sampled_from(indices)), label="read by the step"))
    via_helper = set(data.draw(st.sets(st.sampled_from(indices)), label="read by a helper"))
    edited = data.draw(st.sampled_from(indices), label="edited")
    new = data.draw(_values.filter(lambda v: repr(v) != repr(values[edited])), label="new value")
    changed = list(values)
    changed[edited] = new
    before = keyed({"steps": _module(values, direct, via_helper)})
    after = keyed({"steps": _module(changed, direct, via_helper)})
    if edited in direct | via_helper:
        assert after != before
    else:
        assert after == before


# -- end to end: the stale results of the issue ------------------------------------------------------
def test_a_changed_constant_reruns_the_step_with_the_new_value(pipes: Any, local_tracker: Any) -> None:
    source = """
    import {helpers} as helpers
    THRESHOLD = {threshold}

    @step
    def load() -> list:
        return [5, 20, 150, 1200]

    @step
    def count(rows: list) -> dict:
        return {{"above": sum(1 for r in rows if r > THRESHOLD), "scaled": helpers.scale(len(rows))}}

    @pipeline
    def flow():
        count(load())
    """
    helper = "FACTOR = {factor}\n\ndef scale(x):\n    return x * FACTOR\n"
    tag = uuid.uuid4().hex[:8]
    name, helpers = f"flow_const_{tag}", f"helpers_const_{tag}"

    def make(threshold: int, factor: int) -> Any:
        pipes(helper.format(factor=factor), name=helpers)
        return pipes(textwrap.dedent(source).format(helpers=helpers, threshold=threshold), name=name).flow

    first = run(make(10, 2), tracker=local_tracker)
    assert first.ok and first.load("count") == {"above": 3, "scaled": 8}
    assert run(make(10, 2), tracker=local_tracker).cached == ["load", "count"]
    threshold = run(make(999, 2), tracker=local_tracker)
    assert threshold.cached == ["load"] and threshold.load("count") == {"above": 1, "scaled": 8}
    factor = run(make(999, 55), tracker=local_tracker)
    assert factor.cached == ["load"] and factor.load("count") == {"above": 1, "scaled": 220}


def test_an_unfingerprintable_value_runs_uncached_and_says_which(pipes: Any, local_tracker: Any) -> None:
    flow = pipes("""
    import threading
    LOCK = threading.Lock()

    @step
    def guarded() -> int:
        with LOCK:
            return 1

    @pipeline
    def flow():
        guarded()
    """).flow
    events: list[tuple[str, str, str]] = []
    first = run(flow, tracker=local_tracker, on_event=lambda *e: events.append(e))
    second = run(flow, tracker=local_tracker)
    assert first.ok and second.ok and second.cached == []
    refused = [d for n, s, d in events if s == "uncached"]
    assert refused and "LOCK" in refused[0] and "cache_exclude" in refused[0]
    child = local_tracker.get_run(second.steps["guarded"].run_id)
    assert child.tags["conveyor.cache"] == "refused" and "LOCK" in child.tags["conveyor.cache_refused"]


def test_bad_declarations_name_the_field() -> None:
    from conveyor.errors import InvalidInput
    from conveyor.pipelines import pipeline, step

    with pytest.raises(InvalidInput) as caught:
        step(cache_exclude=("not a name",))
    assert caught.value.field == "cache_exclude"
    with pytest.raises(InvalidInput) as caught:
        pipeline(candidate="train model")(lambda: None)
    assert caught.value.field == "candidate" and 'candidate="train"' in (caught.value.hint or "")
