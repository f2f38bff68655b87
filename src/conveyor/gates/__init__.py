"""Quality gates: automated checks that bless or veto a candidate model.

A gate is declared in conveyor.toml (``[gates.<name>]``) or with ``define_gate`` and is
evaluated for a candidate on held-out data and against the current champion:

- ``metrics``: thresholds, absolute or relative (``"f1 >= champion.f1 - 0.01"``,
  ``"rmse <= baseline.rmse * 0.9"``); those naming a missing champion are skipped;
- ``[gates.<name>.compare]``: a paired comparison on the same rows — bootstrap CI of the
  metric difference against ±margin, and a test of the margin itself: Tango's score test
  for paired proportions (accuracy; McNemar's exact test when margin = 0), Wilcoxon
  signed-rank on the per-row losses shifted by the margin (regression);
  keys ``metric``, ``test``, ``mode`` (non_inferior | superior), ``margin``, ``alpha``,
  ``confidence``, ``resamples``, ``seed``;
- ``[gates.<name>.slices]``: ``columns``, ``bins`` (numeric column → quantile bins),
  ``thresholds``, ``min_size``, ``worst``;
- ``[gates.<name>.baseline]``: ``kind`` (dummy | linear), ``metric``, ``margin``;
- ``data_checks``: the evaluation data against the model signature and ``conveyor.data.validate``;
- ``[gates.<name>.operational]``: ``max_size_mb``, ``max_load_seconds``,
  ``max_p95_latency_ms``, ``latency_samples``.

Other keys: ``model`` (registered name), ``task`` (classification | regression), ``label``,
``positive_label``, ``data`` (``data:/name@version`` or a file). Metrics: accuracy,
balanced_accuracy, error_rate, f1, precision, recall (classification); mae, mse, rmse, r2
(regression).
"""

from conveyor.gates._assess import assess
from conveyor.gates._evaluate import Subject, evaluate, evaluations
from conveyor.gates._grammar import Threshold, parse_threshold
from conveyor.gates._promote import promote
from conveyor.gates._result import Check, Evaluation
from conveyor.gates._spec import (
    BaselineSpec,
    CompareSpec,
    GateSpec,
    OperationalSpec,
    SliceSpec,
    define_gate,
    load_gate,
)

__all__ = [
    "BaselineSpec",
    "Check",
    "CompareSpec",
    "Evaluation",
    "GateSpec",
    "OperationalSpec",
    "SliceSpec",
    "Subject",
    "Threshold",
    "assess",
    "define_gate",
    "evaluate",
    "evaluations",
    "load_gate",
    "parse_threshold",
    "promote",
]
