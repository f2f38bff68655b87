"""Gate declarations: ``[gates.<name>]`` tables of conveyor.toml or ``define_gate(...)`` in
Python, validated with pydantic; every error names the offending key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from conveyor.errors import ConfigError, NotFound
from conveyor.gates._grammar import Threshold, parse_threshold
from conveyor.gates._metrics import known_metrics


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompareSpec(_Spec):
    """The paired comparison with the champion on the same examples."""

    metric: str | None = Field(None, description="Metric compared (default: accuracy or rmse).")
    test: Literal["auto", "bootstrap", "mcnemar", "wilcoxon"] = Field(
        "auto", description="auto: bootstrap of the metric, plus a paired test of the margin: Tango's score test "
        "(McNemar's exact test at margin 0) for accuracy, Wilcoxon on margin-shifted losses for regression."
    )
    mode: Literal["non_inferior", "superior"] = Field(
        "non_inferior", description="non_inferior: not worse by more than margin; superior: significantly better."
    )
    margin: float = Field(0.01, ge=0, description="Allowed loss (non_inferior) or required gain (superior).")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the tests.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap interval.")
    resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples.")
    seed: int = Field(0, description="Seed of the bootstrap, so a decision is reproducible.")


class SliceSpec(_Spec):
    columns: list[str] = Field(default_factory=list, description="Categorical columns: one slice per value.")
    bins: dict[str, Annotated[int, Field(ge=2, le=1000)]] = Field(
        default_factory=dict, description="Numeric column → number of quantile bins (2 to 1000)."
    )
    thresholds: list[str] = Field(default_factory=list, description="Thresholds every slice must pass.")
    min_size: int = Field(30, ge=1, description="Slices with fewer rows are reported but not judged.")
    worst: int = Field(5, ge=1, description="How many worst slices the report lists.")
    protected: list[str] = Field(
        default_factory=list, description="Protected (e.g. demographic) categorical columns: sliced like columns "
        "and recorded as an inclusion check (ML Test Score Model 7).")


class FeatureSpec(_Spec):
    """Every input column must help: permutation importance on the evaluation data."""

    min_importance: float = Field(0.0, description=(
        "A feature fails unless its importance minus two standard deviations of the shuffles exceeds this."))
    repeats: int = Field(10, ge=2, le=100, description="Shuffles per feature.")
    max_rows: int = Field(2000, ge=10, description="Evaluation rows used (a seeded sample above this).")
    seed: int = Field(0, description="Seed of the shuffles, so a decision is reproducible.")
    cost: StrictBool = Field(False, description=(
        "Also measure each feature's cost (ML Test Score Data 3): the predict time it adds (full rows vs. the column "
        "held at its most frequent value, paired and interleaved, median of cost_repeats; ms per 1,000 rows and share "
        "of the predict time) and its Arrow bytes per row, next to its permutation importance."))
    cost_repeats: int = Field(7, ge=3, le=50, description="Paired timings per feature (the median is kept).")
    max_cost_share: float | None = Field(None, gt=0, le=1, description=(
        "With cost: the budget of one feature; a feature fails when the share of the predict time it adds exceeds "
        "this (unset: measured and reported, never failed)."))


class BaselineSpec(_Spec):
    kind: Literal["dummy", "linear"] = Field("dummy", description="Prior/mean dummy or a linear model.")
    metric: str | None = Field(None, description="Metric to beat (default: the compared metric).")
    margin: float = Field(0.0, description="By how much the candidate must beat the baseline.")


class OperationalSpec(_Spec):
    max_size_mb: float | None = Field(None, gt=0, description="Largest model package.")
    max_load_seconds: float | None = Field(None, gt=0, description="Slowest load.")
    max_p95_latency_ms: float | None = Field(None, gt=0, description="Slowest p95 single-row predict.")
    latency_samples: int = Field(50, ge=5, le=10_000, description="Single-row predictions timed.")


class PrivacySpec(_Spec):
    """Personal data in the evaluation data: a scan of every column (ML Test Score Data 5)."""

    allow: list[str] = Field(default_factory=list, description=(
        "Columns allowed to hold personal data (reported, not failed); every other column must hold none."))
    max_rows: int = Field(2000, ge=10, description="Rows scanned (a seeded sample above this).")
    min_share: float = Field(0.05, gt=0, le=1, description=(
        "Share of a column's scanned non-empty values that must match one pattern for it to count as personal data."))


class StalenessSpec(_Spec):
    """Older versions scored on today's evaluation data: quality lost per day of age (ML Test Score Model 4)."""

    versions: int = Field(3, ge=1, le=50, description="How many of the newest older versions are scored.")
    metric: str | None = Field(None, description="Metric whose loss is measured (default: the compared metric).")
    max_age_days: float | None = Field(None, gt=0, description=(
        "Longest a model serves before it is retrained (the team's cadence); with it the check fails when the "
        "loss expected at that age exceeds max_loss."))
    max_loss: float = Field(0.02, ge=0, description="Largest acceptable loss of the metric at max_age_days.")


class GateSpec(_Spec):
    """One gate. Example (conveyor.toml)::

        [gates.default]
        model = "churn"
        label = "churned"
        metrics = ["f1 >= 0.8", "f1 >= champion.f1 - 0.01"]
        data = "data:/churn-holdout@3"
        [gates.default.slices]
        columns = ["region"]
        thresholds = ["accuracy >= 0.7"]
    """

    name: str = "default"
    model: str | None = Field(None, description="Registered model the gate guards.")
    task: Literal["classification", "regression"] = "classification"
    label: str = Field("label", description="Column of the evaluation data holding the truth.")
    positive_label: Any = Field(None, description="Positive class for f1/precision/recall (binary).")
    metrics: list[str] = Field(default_factory=list, description="Thresholds on the whole evaluation set.")
    data: str | None = Field(None, description="Held-out data: data:/name@version or a .parquet/.csv path.")
    compare: CompareSpec | None = Field(default_factory=lambda: CompareSpec.model_validate({}))
    slices: SliceSpec | None = None
    baseline: BaselineSpec | None = None
    operational: OperationalSpec | None = None
    features: FeatureSpec | None = None
    data_checks: bool = Field(True, description="Check the evaluation data against the model signature.")
    schema_file: str | None = Field(None, description=(
        "Schema file kept in the project (`conveyor data schema … -o FILE`, then edited: types, ranges, categories, "
        "required columns) that the evaluation data must satisfy; part of the data check (ML Test Score Data 4)."))
    privacy: PrivacySpec | None = None
    staleness: StalenessSpec | None = None
    trace: bool = Field(False, description=(
        "Step the first evaluation row through the model (each step of a scikit-learn Pipeline) and check it "
        "reproduces predict (ML Test Score Infra 5)."))

    @property
    def prefix(self) -> str:
        return f"gates.{self.name}"

    def thresholds(self) -> list[Threshold]:
        known = known_metrics(self.task)
        return [
            parse_threshold(text, field=f"{self.prefix}.metrics[{i}]", known=known)
            for i, text in enumerate(self.metrics)
        ]

    def slice_thresholds(self) -> list[Threshold]:
        known = known_metrics(self.task)
        texts = self.slices.thresholds if self.slices else []
        return [
            parse_threshold(text, field=f"{self.prefix}.slices.thresholds[{i}]", known=known)
            for i, text in enumerate(texts)
        ]

    @property
    def compare_metric(self) -> str:
        if self.compare and self.compare.metric:
            return self.compare.metric
        return "accuracy" if self.task == "classification" else "rmse"

    def validated(self) -> GateSpec:
        """Parse every threshold and check every metric name now, so mistakes surface at
        declaration, not halfway through an evaluation."""
        self.thresholds()
        self.slice_thresholds()
        known = known_metrics(self.task)
        for key, metric in (
            ("compare.metric", self.compare.metric if self.compare else None),
            ("baseline.metric", self.baseline.metric if self.baseline else None),
            ("staleness.metric", self.staleness.metric if self.staleness else None),
        ):
            if metric is not None and metric not in known:
                raise ConfigError(
                    f"{self.prefix}.{key} names unknown metric {metric!r}", field=f"{self.prefix}.{key}",
                    value=metric, hint=f"known metrics: {', '.join(sorted(known))}",
                )
        return self


def define_gate(name: str = "default", **options: Any) -> GateSpec:
    """Declare a gate in Python: ``define_gate("default", metrics=["f1 >= 0.8"], label="y")``."""
    return _build(name, {**options}, source="define_gate")


def load_gate(name: str = "default", settings: Any = None) -> GateSpec:
    """The gate ``[gates.<name>]`` of conveyor.toml."""
    if settings is None:
        from conveyor.settings import Settings

        settings = Settings.load()
    tables = settings.section("gates")
    if not isinstance(tables, dict) or name not in tables:
        known = ", ".join(sorted(tables)) if isinstance(tables, dict) else ""
        raise NotFound("gate", name, hint=f"declare [gates.{name}] in conveyor.toml (known: {known or 'none'})")
    raw = tables[name]
    if not isinstance(raw, dict):
        raise ConfigError(f"[gates.{name}] must be a table", field=f"gates.{name}", value=raw)
    return _build(name, dict(raw), source="conveyor.toml")


def _build(name: str, raw: dict[str, Any], *, source: str) -> GateSpec:
    raw.setdefault("name", name)
    try:
        spec = GateSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        value: Any = raw
        for part in first["loc"]:
            value = value.get(part) if isinstance(value, dict) else (value[part] if isinstance(value, list) and isinstance(part, int) and part < len(value) else None)
        raise ConfigError(
            f"gates.{name}.{key} in {source}: {first['msg']}", field=f"gates.{name}.{key}", value=value,
            hint="see the GateSpec fields in conveyor.gates",
        ) from exc
    return spec.validated()
