"""``conveyor.autolog()``: record every scikit-learn ``fit`` without changing training code.

Each outermost ``fit`` (a Pipeline's inner fits are not logged twice) records the
estimator's params, its training score, its class as a tag, and the fitted model as a
conveyor model package at ``model`` (skops inside, never a pickle; the signature is
inferred from the first training rows), so ``runs:/<id>/model`` registers and serves. Without an active run, one is
started for the fit and ended after it.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

log = logging.getLogger("conveyor.autolog")

_local = threading.local()
_settings: dict[str, Any] = {"enabled": False, "log_models": True, "experiment": None}
_patched: set[type] = set()
MARK = "__conveyor_autolog__"


def autolog(*, log_models: bool = True, experiment: str | None = None, disable: bool = False) -> None:
    """Turn on (or, with ``disable=True``, off) automatic logging of scikit-learn fits.

    Example::

        conveyor.autolog()
        LogisticRegression(C=0.5).fit(X, y)   # a run with params, training_score, the model
    """
    _settings.update(enabled=not disable, log_models=log_models, experiment=experiment)
    if disable:
        return
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        for klass in cls.__mro__:
            fit = klass.__dict__.get("fit")
            if fit is not None and callable(fit) and not getattr(fit, MARK, False):
                setattr(klass, "fit", _wrap(fit))
                _patched.add(klass)


def _wrap(fit: Any) -> Any:
    @functools.wraps(fit)
    def fit_and_log(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _settings["enabled"] or getattr(_local, "depth", 0) > 0:
            return fit(self, *args, **kwargs)
        _local.depth = 1
        try:
            return _fit_logged(fit, self, args, kwargs)
        finally:
            _local.depth = 0

    setattr(fit_and_log, MARK, True)
    return fit_and_log


def _fit_logged(fit: Any, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from conveyor.tracking import _fluent

    started = _fluent.active_run() is None
    if started:
        run = _fluent.start_run(_settings["experiment"], name=type(estimator).__name__)
    try:
        result = fit(estimator, *args, **kwargs)
        _log_fit(estimator, args, kwargs)
    except BaseException:
        if started:
            run.__exit__(*__import__("sys").exc_info())
        raise
    if started:
        run.__exit__(None, None, None)
    return result


def _log_fit(estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    from conveyor.tracking import _fluent

    cls = type(estimator)
    _fluent.set_tags({"estimator_class": f"{cls.__module__}.{cls.__qualname__}", "autolog": "sklearn"})
    params = {k: _param_text(v) for k, v in estimator.get_params(deep=True).items()}
    try:
        _fluent.log_params(params)
    except ValueError as exc:  # a second fit with other params in the same run
        log.warning("autolog: params not logged again: %s", exc)
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    if X is not None and y is not None and hasattr(estimator, "score"):
        try:
            _fluent.log_metric("training_score", float(estimator.score(X, y)))
        except Exception as exc:  # scoring is a courtesy; never fail the user's fit for it
            log.warning("autolog: training score not computed: %s", exc)
    if _settings["log_models"]:
        from conveyor.models import log as log_model

        example = _example(X)
        log_model(estimator, "model", input_example=example, signature="infer" if example is not None else None)


def _example(X: Any) -> Any:
    """The first rows of the training input, to infer and store the model's signature."""
    if X is None:
        return None
    try:
        return X.head(5) if hasattr(X, "head") else X[:5]
    except Exception:  # sparse matrices and exotic inputs: no signature rather than no fit
        return None


def _param_text(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 500 else text[:497] + "..."
