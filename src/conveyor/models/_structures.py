"""Bounds checks of scikit-learn's compiled tree structures after a skops load.

Trusting ``sklearn`` trusts its classes, but a few of them keep raw indices that compiled
code follows without bounds checks: a hostile ``sklearn.tree._tree.Tree`` whose child or
feature index points past its arrays loads fine and then reads out-of-bounds memory (or
crashes the server) on the first predict. Before a loaded estimator is handed out, every
such structure reachable from it is checked:

- ``sklearn.tree._tree.Tree`` (decision trees, forests, extra trees, gradient boosting):
  each split node's children are later nodes of the same tree, its feature is below the
  tree's and the estimator's feature count; leaves have no children;
- ``TreePredictor`` (histogram gradient boosting): the same for ``left``/``right``/
  ``feature_idx``, and categorical splits point at an existing bitset;
- ``KDTree``/``BallTree`` (nearest neighbours): the index array is a permutation of the
  training rows, node ranges stay inside it, split nodes have both children, the bounds
  match the data's width.

"Later node" also rules out cycles, so predict always terminates. Other compiled
structures are not checked (docs/models-trust.md says so).
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import CorruptObject

_MAX_DEPTH = 64


def _bad(what: str, why: str) -> CorruptObject:
    return CorruptObject(f"the model's {what} is malformed: {why}",
                         hint="a model saved by scikit-learn never looks like this; do not load this file")


def _check_tree(tree: Any, n_features: int | None, what: str) -> None:
    import numpy as np

    state = tree.__getstate__()
    nodes = state["nodes"]
    count = int(state["node_count"])
    if len(nodes) != count or count < 1:
        raise _bad(what, f"{len(nodes)} nodes but node_count {count}")
    limit = int(tree.n_features) if n_features is None else min(int(tree.n_features), int(n_features))
    left, right, feature = (np.asarray(nodes[f], dtype=np.int64) for f in ("left_child", "right_child", "feature"))
    index = np.arange(count)
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise _bad(what, "a node has exactly one child")
    split = ~leaf
    if np.any((left[split] <= index[split]) | (right[split] <= index[split])
              | (left[split] >= count) | (right[split] >= count)):
        raise _bad(what, "a child index is not a later node of the tree")
    if np.any((feature[split] < 0) | (feature[split] >= limit)):
        raise _bad(what, f"a split uses a feature outside 0..{limit - 1}")


def _check_predictor(predictor: Any, n_features: int | None, what: str) -> None:
    import numpy as np

    nodes = predictor.nodes
    count = len(nodes)
    index = np.arange(count)
    split = np.asarray(nodes["is_leaf"]) == 0
    left, right = np.asarray(nodes["left"], dtype=np.int64), np.asarray(nodes["right"], dtype=np.int64)
    if count < 1 or np.any((left[split] <= index[split]) | (right[split] <= index[split])
                           | (left[split] >= count) | (right[split] >= count)):
        raise _bad(what, "a child index is not a later node of the tree")
    feature = np.asarray(nodes["feature_idx"], dtype=np.int64)
    if n_features is not None and np.any((feature[split] < 0) | (feature[split] >= n_features)):
        raise _bad(what, f"a split uses a feature outside 0..{n_features - 1}")
    categorical = split & (np.asarray(nodes["is_categorical"]) != 0)
    bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    bitset = np.asarray(nodes["bitset_idx"], dtype=np.int64)
    if np.any((bitset[categorical] < 0) | (bitset[categorical] >= bitsets)):
        raise _bad(what, "a categorical split points at a missing bitset")


def _check_binary_tree(tree: Any, what: str) -> None:
    import numpy as np

    state = tree.__getstate__()
    data, idx, node_data, bounds = (np.asarray(a) for a in state[:4])
    n_nodes = int(state[6])
    rows = data.shape[0] if data.ndim == 2 else -1
    if rows < 0 or idx.ndim != 1 or len(idx) != rows or not np.array_equal(np.sort(idx), np.arange(rows)):
        raise _bad(what, "the index array is not a permutation of the training rows")
    if len(node_data) != n_nodes or bounds.ndim != 3 or bounds.shape[1] != n_nodes or bounds.shape[2] != data.shape[1]:
        raise _bad(what, "node arrays do not match the node count or the data's width")
    start, end = np.asarray(node_data["idx_start"], dtype=np.int64), np.asarray(node_data["idx_end"], dtype=np.int64)
    if np.any((start < 0) | (end > rows) | (start > end)):
        raise _bad(what, "a node's row range leaves the index array")
    inner = np.flatnonzero(np.asarray(node_data["is_leaf"]) == 0)
    if np.any(2 * inner + 2 >= n_nodes):
        raise _bad(what, "a split node's children are past the last node")


def check_structures(model: Any) -> None:
    """Raise ``CorruptObject`` if a tree-like structure in ``model`` has out-of-range indices."""
    seen: set[int] = set()
    stack: list[tuple[Any, int, int | None]] = [(model, 0, None)]
    while stack:
        obj, depth, n_features = stack.pop()
        if id(obj) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(obj))
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if kind == "sklearn.tree._tree.Tree":
            _check_tree(obj, n_features, "decision tree")
        elif kind == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
            _check_predictor(obj, n_features, "histogram gradient boosting tree")
        elif kind in ("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree"):
            _check_binary_tree(obj, "nearest-neighbours tree")
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, depth + 1, n_features) for v in obj)
        elif isinstance(obj, dict):
            stack.extend((v, depth + 1, n_features) for v in obj.values())
        elif type(obj).__module__ == "numpy" and getattr(obj, "dtype", None) is not None and obj.dtype == object:
            stack.extend((v, depth + 1, n_features) for v in obj.ravel().tolist())
        elif kind.startswith("sklearn.") and hasattr(obj, "__dict__"):
            own = getattr(obj, "n_features_in_", None)
            width = int(own) if isinstance(own, int) or type(own).__module__ == "numpy" else n_features
            stack.extend((v, depth + 1, width) for v in vars(obj).values())
