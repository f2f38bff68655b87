"""The 28 tests of the ML Test Score (Breck et al., "The ML Test Score: A Rubric for ML
Production Readiness and Technical Debt Reduction", IEEE BigData 2017), their sections, the
2017 scoring rule and its bands (Table V).

Titles are the paper's table titles; ``earn`` is conveyor's own text: what a project does,
with conveyor, to have the test run automatically.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BANDS", "SECTIONS", "TESTS", "RubricTest", "band", "find_test"]

SECTIONS = ("Data", "Model", "Infra", "Monitor")


@dataclass(frozen=True)
class RubricTest:
    id: str  # "Data 1"
    title: str
    earn: str

    @property
    def section(self) -> str:
        return self.id.split()[0]


_RECORD = "conveyor score record '{id}' --evidence '<where the documented result is>'"

TESTS: tuple[RubricTest, ...] = (
    RubricTest("Data 1", "Feature expectations are captured in a schema",
               "version the training data (`conveyor data add FILE --name N`) and keep the gate's data check on "
               "(`data_checks = true` in [gates.<name>], the default), so every candidate's evaluation data is checked "
               "against the schema"),
    RubricTest("Data 2", "All features are beneficial",
               "add the feature check to the gate: `[gates.<name>.features] min_importance = 0` (permutation "
               "importance of every input column on the evaluation data)"),
    RubricTest("Data 3", "No feature's cost is too much",
               "measure each feature's cost in the gate: `[gates.<name>.features] cost = true` (the predict time each "
               "input column adds and its Arrow bytes per row, next to its permutation importance; "
               "`max_cost_share = 0.5` also fails a feature above that share of the predict time); upstream "
               "dependencies stay yours to weigh"),
    RubricTest("Data 4", "Features adhere to meta-level requirements",
               "keep the rules in a schema file (`conveyor data schema NAME -o schemas/NAME.toml`, then edit it) and "
               "name it in the gate: `schema_file = \"schemas/NAME.toml\"` in [gates.<name>], so every candidate's "
               "evaluation data is validated against it"),
    RubricTest("Data 5", "The data pipeline has appropriate privacy controls",
               "scan the evaluation data for personal data in the gate: `[gates.<name>.privacy] allow = []` (columns "
               "allowed to hold it); the stores' access control stays yours to set"),
    RubricTest("Data 6", "New features can be added quickly",
               "train through a pipeline (`conveyor pipeline run mod:pipe`) whose model is gated and registered, so a new "
               "feature reaches a candidate in one command"),
    RubricTest("Data 7", "All input feature code is tested",
               "run the project's unit tests in CI: `conveyor ci init --provider github` writes a workflow, add a "
               "`pytest` step"),
    RubricTest("Model 1", "Model specs are reviewed and submitted",
               "commit the training code before training (runs record the git commit and a clean tree) and gate pull "
               "requests with `conveyor ci init --provider github`"),
    RubricTest("Model 2", "Offline and online metrics correlate",
               "serve the champion, send feedback labels and run a monitor with a quality rule (e.g. `accuracy < 0.8`) "
               "on a version that passed a gate: `conveyor monitor performance NAME` shows both"),
    RubricTest("Model 3", "All hyperparameters have been tuned",
               "search them: `conveyor pipeline sweep mod:pipe -p C=0.1,1,10 --maximize accuracy`"),
    RubricTest("Model 4", "The impact of model staleness is known",
               "score older versions on today's data in the gate: `[gates.<name>.staleness] versions = 3` (add "
               "`max_age_days` and `max_loss` to check the retraining cadence against the measured loss)"),
    RubricTest("Model 5", "A simpler model is not better",
               "add a baseline to the gate: `[gates.<name>.baseline] kind = \"dummy\"` (or \"linear\")"),
    RubricTest("Model 6", "Model quality is sufficient on all important data slices",
               "add slices to the gate: `[gates.<name>.slices] columns = [...]`, `thresholds = [...]`"),
    RubricTest("Model 7", "The model is tested for considerations of inclusion",
               "slice the gate by the protected groups with thresholds: `[gates.<name>.slices] protected = [\"group\"]`, "
               "`thresholds = [...]`"),
    RubricTest("Infra 1", "Training is reproducible",
               "run the training pipeline twice without the cache (`conveyor pipeline run mod:pipe --no-cache`): "
               "identical step outputs prove it"),
    RubricTest("Infra 2", "Model specs are unit tested",
               "test the training code with pytest in CI (`conveyor ci init --provider github`, add a `pytest` step)"),
    RubricTest("Infra 3", "The ML pipeline is integration tested",
               "gate the whole pipeline in CI: `conveyor ci check --pipeline mod:pipe` (`conveyor ci init` writes it)"),
    RubricTest("Infra 4", "Model quality is validated before serving",
               "promote only through a gate: `conveyor ci promote` / `conveyor.gates.promote` (no --force)"),
    RubricTest("Infra 5", "The model is debuggable",
               "log models as conveyor packages (`conveyor.models.log`) and add `trace = true` to the gate: every "
               "evaluation steps one row through the loaded package (each Pipeline step) and checks it matches predict"),
    RubricTest("Infra 6", "Models are canaried before serving",
               "add the operational check to the gate (`[gates.<name>.operational]`: the package loads in the serving "
               "code) and serve a canary: `conveyor serve models:/N@champion --canary models:/N/V=0.1`"),
    RubricTest("Infra 7", "Serving models can be rolled back",
               "practise it: `conveyor models rollback NAME` (recorded in the registry history)"),
    RubricTest("Monitor 1", "Dependency changes result in notification",
               "declare the training data set in a monitor with `retrain_on_new_data = true`, or alert on it with a "
               "rule `new_data_versions > 0`, so a new upstream version is noticed and acted on"),
    RubricTest("Monitor 2", "Data invariants hold for inputs",
               "run a monitor on the served model (`[monitors.<name>]`, `conveyor monitor watch`): drift, missing and "
               "out-of-range rates of the serving inputs against the training data"),
    RubricTest("Monitor 3", "Training and serving are not skewed",
               "alert on skew: a monitor rule `skew_mismatch_rate > 0` (every evaluation re-predicts a sample of the "
               "logged serving rows with the served version's package and compares with the logged answers)"),
    RubricTest("Monitor 4", "Models are not too stale",
               "retrain on a schedule (`retrain_every = \"7d\"` in [monitors.<name>]) or alert on age: a monitor rule "
               "`model_age_days > 30`"),
    RubricTest("Monitor 5", "Models are numerically stable",
               "alert on missing or non-finite predictions: a monitor rule `nonfinite_prediction_rate > 0`"),
    RubricTest("Monitor 6", "Computing performance has not regressed",
               "alert on latency: a monitor rule such as `p95_latency_ms > 50` or `p95_latency_ratio > 1.5`"),
    RubricTest("Monitor 7", "Prediction quality has not regressed",
               "send feedback labels and alert on live quality: a monitor rule such as `accuracy < 0.8` or `rmse > 3`"),
)

#: (upper bound, meaning) of Table V; a score above the last bound is "exceptional".
BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "More of a research project than a productionized system"),
    (1.0, "Not totally untested, but it is worth considering the possibility of serious holes in reliability"),
    (2.0, "There's been first pass at basic productionization, but additional investment may be needed"),
    (3.0, "Reasonably tested, but it's possible that more of those tests and procedures may be automated"),
    (5.0, "Strong levels of automated testing and monitoring, appropriate for mission-critical systems"),
)
EXCEPTIONAL = "Exceptional levels of automated testing and monitoring"


def band(score: float) -> str:
    """Table V of the 2017 paper: 0, (0,1], (1,2], (2,3], (3,5], > 5."""
    for upper, meaning in BANDS:
        if score <= upper:
            return meaning
    return EXCEPTIONAL


def find_test(test_id: str) -> RubricTest:
    """The test named ``"Infra 7"`` (case and spacing forgiven: ``infra7``, ``INFRA-7``)."""
    from conveyor.errors import NotFound

    wanted = "".join(ch for ch in test_id.lower() if ch.isalnum())
    for test in TESTS:
        if test.id.lower().replace(" ", "") == wanted:
            return test
    ids = ", ".join(t.id for t in TESTS)
    raise NotFound("ML Test Score test", test_id, hint=f"one of: {ids}")
