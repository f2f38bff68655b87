"""pyfunc flavor: a plain Python object with ``predict``, stored without pickle.

What is stored is the class as an importable ``"module:Class"`` reference plus its state:
JSON values in ``state.json`` and numpy arrays in ``state.npz`` (loaded with
``allow_pickle=False``). Constraints, by design:

- the class must live at the top level of a module importable where the model is loaded
  (not ``__main__``, not a local class); its distribution is pinned when it has one;
- its state (``get_state()`` if defined, else its ``__dict__``) must be JSON values and
  numpy arrays; anything else is refused at save time, naming the attribute;
- it is rebuilt by ``Class.from_state(state)`` if defined, else without calling
  ``__init__`` (``__dict__`` restored);
- loading imports the class only when the trust policy trusts it (its module in
  ``[models] trusted_modules``, or named with ``--trust``/``trusted=[...]``): a package
  names its class, so an untrusted package must not pick any importable class.

``predict`` receives what the input example was: a DataFrame for a table, an ndarray for
an array (``accepts="frame"|"array"`` overrides).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import InvalidInput
from conveyor.models._flavor import Flavor, import_trusted, reference_of
from conveyor.models._trust import Reference

STATE_JSON = "state.json"
STATE_NPZ = "state.npz"


class PyfuncFlavor(Flavor):
    name: ClassVar[str] = "pyfunc"
    requirements: ClassVar[tuple[str, ...]] = ()

    def can_handle(self, obj: Any) -> bool:
        return not isinstance(obj, type) and callable(getattr(obj, "predict", None))

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        import numpy as np

        example = options.pop("example", None)
        accepts = options.pop("accepts", None) or ("array" if isinstance(example, np.ndarray) else "frame")
        self.reject_options(options, ("accepts",))
        if accepts not in ("frame", "array"):
            raise InvalidInput(f"accepts={accepts!r} is not valid", field="accepts", value=accepts, hint='use "frame" or "array"')
        reference = reference_of(type(obj))
        state = obj.get_state() if callable(getattr(obj, "get_state", None)) else dict(vars(obj))
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        plain = {k: v for k, v in state.items() if k not in arrays}
        for key, value in plain.items():
            try:
                json.dumps(value, allow_nan=True)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"attribute {key!r} of {reference} is a {type(value).__name__}, which the pyfunc flavor cannot store",
                    field=key,
                    value=type(value).__name__,
                    hint="keep state as JSON values and numpy arrays (or define get_state/from_state), "
                    "or use the framework's own flavor",
                ) from None
        bad = [k for k, v in arrays.items() if v.dtype.kind == "O"]
        if bad:
            raise InvalidInput(f"array attribute(s) {bad} hold Python objects", field=bad[0], hint="use numeric or string arrays")
        (folder / STATE_JSON).write_text(json.dumps(plain, sort_keys=True), encoding="utf-8")
        if arrays:
            np.savez(folder / STATE_NPZ, **arrays)
        return {
            "class": reference,
            "state": STATE_JSON,
            "arrays": STATE_NPZ if arrays else None,
            "accepts": accepts,
            "extra_requirements": _distribution_of(reference),
        }

    def references(self, files: Any, config: Mapping[str, Any]) -> list[Reference]:
        return [Reference(str(config.get("class")).replace(":", ".", 1), "class")]

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        import numpy as np

        files = opts["files"]
        cls = import_trusted(str(config["class"]), what="pyfunc class", policy=opts["trusted"], kind="class")
        if not isinstance(cls, type) or not callable(getattr(cls, "predict", None)):
            raise InvalidInput(
                f"{config['class']} is not a class with a predict method", field="class", value=config["class"]
            )
        text = files.path(config.get("state", STATE_JSON), field="flavor_config.state").read_text("utf-8")
        state = json.loads(text)
        if not isinstance(state, dict):
            raise InvalidInput("the pyfunc state is not a JSON object", field="flavor_config.state")
        if config.get("arrays"):
            with np.load(files.path(config["arrays"], field="flavor_config.arrays"), allow_pickle=False) as arrays:
                state.update({k: arrays[k] for k in arrays.files})
        from_state = getattr(cls, "from_state", None)
        if callable(from_state):
            obj = from_state(state)
        else:
            obj = cls.__new__(cls)
            obj.__dict__.update(state)
        return _Pyfunc(obj, config.get("accepts", "frame"))

    def native(self, model: Any) -> Any:
        return model.obj

    def predict(self, model: Any, batch: Any) -> Any:
        import numpy as np

        return np.asarray(model.obj.predict(model.input(batch)))

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return callable(getattr(model.obj, "predict_proba", None))

    def predict_proba(self, model: Any, batch: Any) -> Any:
        if not self.has_proba(model, {}):
            return super().predict_proba(model, batch)
        import numpy as np

        return np.asarray(model.obj.predict_proba(model.input(batch)))

    def native_predict(self, model: Any, example: Any) -> Any:
        return model.predict(example)


class _Pyfunc:
    __slots__ = ("obj", "frame")

    def __init__(self, obj: Any, accepts: str) -> None:
        self.obj = obj
        self.frame = accepts == "frame"

    def input(self, batch: Any) -> Any:
        return batch.to_frame() if self.frame else batch.to_numpy()


def _distribution_of(reference: str) -> list[str]:
    from importlib.metadata import packages_distributions

    top = reference.split(":", 1)[0].split(".", 1)[0]
    return sorted(set(packages_distributions().get(top, [])))
