"""PyTorch flavor: TorchScript, or a ``state_dict`` plus a model factory.

- TorchScript (default): ``torch.jit.script`` (or ``trace`` on the input example when the
  module cannot be scripted); loads without the model's Python code.
- ``factory="package.module:function"``: only the weights are stored (``state_dict.pt``)
  and loaded with ``torch.load(weights_only=True)``, which refuses arbitrary pickled
  objects; the factory (``factory_kwargs`` are JSON) builds the module they go into.
  The factory is code the package names and calls with its own arguments, so it is a
  ``callable`` for the trust policy: loading imports it only when it is named in full
  (``--trust pkg.nets.build``, ``[models] trusted_modules``, ``trusted=[...]``), and
  what it returns must be a ``torch.nn.Module``.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import CorruptObject, InvalidInput
from conveyor.models._flavor import Flavor, import_trusted, load_reference
from conveyor.models._trust import Reference, UntrustedTypes

SCRIPT_FILE = "model.pt"
STATE_FILE = "state_dict.pt"


class TorchFlavor(Flavor):
    name: ClassVar[str] = "pytorch"
    requirements: ClassVar[tuple[str, ...]] = ("torch",)
    # torch.load(weights_only=True) and TorchScript's C++ unpickler read these (see module docstring)
    restricted_pickles: ClassVar[Mapping[str, tuple[str, ...]]] = {
        SCRIPT_FILE: ("*/data.pkl", "*/constants.pkl", "*/code/*.debug_pkl"),
        STATE_FILE: ("*/data.pkl",),
    }

    def can_handle(self, obj: Any) -> bool:
        if "torch" not in sys.modules:
            return False
        import torch

        return isinstance(obj, torch.nn.Module)

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        import torch

        example = options.pop("example", None)
        factory = options.pop("factory", None)
        kwargs = dict(options.pop("factory_kwargs", None) or {})
        mode = options.pop("mode", "script")
        self.reject_options(options, ("factory", "factory_kwargs", "mode"))
        dtype = _input_dtype(example)
        if factory is not None:
            load_reference(factory, what="factory")  # fail now, not when someone loads it
            torch.save(obj.state_dict(), folder / STATE_FILE)
            return {"format": "state_dict", "file": STATE_FILE, "factory": factory,
                    "factory_kwargs": kwargs, "input_dtype": dtype}
        scripted = self._script(obj, example, mode, dtype)
        torch.jit.save(scripted, str(folder / SCRIPT_FILE))
        return {"format": "torchscript", "file": SCRIPT_FILE, "input_dtype": dtype}

    def _script(self, obj: Any, example: Any, mode: str, dtype: str) -> Any:
        import torch

        if isinstance(obj, torch.jit.ScriptModule):
            return obj
        if mode == "script":
            try:
                return torch.jit.script(obj)
            except Exception:  # noqa: BLE001 - unscriptable Python: fall back to tracing below
                if example is None:
                    raise InvalidInput(
                        f"{type(obj).__qualname__} cannot be scripted and there is no input example to trace it with",
                        field="input_example", hint="pass input_example=, or factory='module:function' to store a state_dict",
                    ) from None
        if example is None:
            raise InvalidInput("tracing needs an input example", field="input_example")
        with torch.no_grad():
            return torch.jit.trace(obj.eval(), _tensor(example, dtype))

    def references(self, files: Any, config: Mapping[str, Any]) -> list[Reference]:
        if config.get("format") == "state_dict":
            return [Reference(str(config.get("factory")).replace(":", ".", 1), "callable")]
        return []

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        kwargs = config.get("factory_kwargs") or {}
        if config.get("format") == "state_dict" and not isinstance(kwargs, Mapping):
            raise InvalidInput("factory_kwargs is not a JSON object", field="flavor_config.factory_kwargs", value=kwargs)
        # the trust check comes before torch or the factory's module is imported
        build = None
        if config.get("format") == "state_dict":
            build = import_trusted(str(config["factory"]), what="factory", policy=opts["trusted"])
        path = opts["files"].path(config.get("file"), field="flavor_config.file")
        import torch

        if build is not None:
            model = build(**dict(kwargs))
            if not isinstance(model, torch.nn.Module):
                raise InvalidInput(f"factory {config['factory']} returned a {type(model).__qualname__}, not a "
                                   "torch.nn.Module", field="flavor_config.factory", value=config["factory"])
            try:
                weights = torch.load(path, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as exc:  # weights_only refused a global: code, not weights
                raise UntrustedTypes(f"{path.name} holds Python objects, not only tensors: {str(exc)[:300]}",
                                     field="flavor_config.file", value=path.name,
                                     hint="save only model.state_dict() tensors") from None
            except (RuntimeError, ValueError, EOFError) as exc:
                raise CorruptObject(f"{path.name} is not a PyTorch state_dict: {str(exc)[:300]}") from None
            model.load_state_dict(weights)
        else:
            try:
                model = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError) as exc:
                raise CorruptObject(f"{path.name} is not a TorchScript archive: {str(exc)[:300]}") from None
        model.eval()
        return _Torch(model, str(config.get("input_dtype", "float32")))

    def native(self, model: Any) -> Any:
        return model.model

    def predict(self, model: Any, batch: Any) -> Any:
        import torch

        with torch.inference_mode():
            out = model.model(torch.from_numpy(batch.to_numpy(model.dtype)))
        return out.numpy()

    def native_predict(self, model: Any, example: Any) -> Any:
        import torch

        with torch.inference_mode():
            return model.eval()(_tensor(example, _input_dtype(example))).numpy()


class _Torch:
    __slots__ = ("model", "dtype")

    def __init__(self, model: Any, dtype: str) -> None:
        self.model = model
        self.dtype = dtype


def _input_dtype(example: Any) -> str:
    """float32 unless the example says otherwise (torch weights are float32 by default)."""
    import numpy as np

    if example is None:
        return "float32"
    data = example.to_numpy() if hasattr(example, "to_numpy") else np.asarray(example)
    return "float32" if data.dtype == np.float64 else str(data.dtype)


def _tensor(example: Any, dtype: str) -> Any:
    import numpy as np
    import torch

    data = example.to_numpy() if hasattr(example, "to_numpy") else example
    return torch.from_numpy(np.ascontiguousarray(data, dtype=dtype))
