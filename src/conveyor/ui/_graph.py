"""Directed graphs laid out here and drawn as inline SVG: pipeline DAGs and lineage.

Layout (a small Sugiyama scheme): each node's layer is its longest path from a source, so
every edge points right; nodes within a layer are ordered by the mean position of their
neighbours in the previous layer (two sweeps down and one up), which removes most
crossings on pipeline-sized graphs. Nodes are links (keyboard-focusable) with their full
label in a ``<title>``; every text is escaped.

Example::

    svg = draw([GNode("load", "load", href="#step-load", status="FINISHED")],
               [])
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 50, 70, 22, 12


@dataclass(frozen=True)
class GNode:
    id: str
    label: str
    href: str | None = None
    status: str = ""          # a CSS class suffix: FINISHED, FAILED, cached, …
    kind: str = ""            # shown on the second line (a step's status, a lineage node's kind)
    detail: str = ""          # extra second-line text (cache hit/miss, duration)
    attrs: dict[str, str] = field(default_factory=dict)


def layers(nodes: list[GNode], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Nodes grouped by longest path from a source, each layer ordered to limit crossings."""
    ids = [n.id for n in nodes]
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        if a in ids and b in ids and a != b:
            preds[b].append(a)
            succs[a].append(b)
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def level(node: str) -> int:
        if node in depth:
            return depth[node]
        if node in visiting:  # a cycle (should not happen): cut it here
            return 0
        visiting.add(node)
        depth[node] = 1 + max((level(p) for p in preds[node]), default=-1)
        visiting.discard(node)
        return depth[node]

    for node in ids:
        level(node)
    for node in ids:  # a source sits just before its first consumer (short edges, fewer crossings)
        if not preds[node] and succs[node]:
            depth[node] = max(min(depth[m] for m in succs[node]) - 1, 0)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in ids:
        grouped[depth[node]].append(node)

    def sweep(order: list[list[str]], neighbours: dict[str, list[str]], indices: range) -> None:
        for i in indices:
            ref = order[i - 1] if neighbours is preds else order[i + 1]
            pos = {n: k for k, n in enumerate(ref)}
            order[i].sort(key=lambda n: (sum(pos[m] for m in neighbours[n] if m in pos) /
                                         max(sum(1 for m in neighbours[n] if m in pos), 1)) if any(
                m in pos for m in neighbours[n]) else len(ref))

    for _ in range(2):
        sweep(grouped, preds, range(1, len(grouped)))
        sweep(grouped, succs, range(len(grouped) - 2, -1, -1))
    sweep(grouped, preds, range(1, len(grouped)))
    return grouped


def draw(nodes: list[GNode], edges: list[tuple[str, str, str]], *, title: str) -> str:
    """The graph as an ``<svg>``: ``edges`` are ``(from, to, label)``."""
    e = html.escape
    by_id = {n.id: n for n in nodes}
    grouped = layers(nodes, [(a, b) for a, b, _ in edges])
    tallest = max((len(g) for g in grouped), default=1)
    width = PAD * 2 + len(grouped) * NODE_W + max(len(grouped) - 1, 0) * GAP_X
    height = PAD * 2 + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for i, group in enumerate(grouped):
        offset = (tallest - len(group)) * (NODE_H + GAP_Y) / 2
        for k, node in enumerate(group):
            where[node] = (PAD + i * (NODE_W + GAP_X), PAD + offset + k * (NODE_H + GAP_Y))
    out = [f"<svg class='graph' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='group' "
           f"aria-label='{e(title, quote=True)}'>",
           "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
           "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' class='arrowhead'/></marker></defs>",
           "<g class='edges'>"]
    for a, b, label in edges:
        if a not in where or b not in where:
            continue
        (ax, ay), (bx, by) = where[a], where[b]
        x1, y1, x2, y2 = ax + NODE_W, ay + NODE_H / 2, bx, by + NODE_H / 2
        mid = (x1 + x2) / 2
        out.append(f"<path class='edge' data-from='{e(a, quote=True)}' data-to='{e(b, quote=True)}' "
                   f"d='M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2 - 2:.1f},{y2:.1f}' "
                   f"marker-end='url(#arrow)'><title>{e(label)}</title></path>")
    out.append("</g><g class='nodes'>")
    for node_id, (x, y) in where.items():
        n = by_id[node_id]
        label = n.label if len(n.label) <= 24 else n.label[:23] + "…"
        second = " · ".join(t for t in (n.kind, n.detail) if t)
        second = second if len(second) <= 30 else second[:29] + "…"
        extra = "".join(f" {e(k)}='{e(v, quote=True)}'" for k, v in n.attrs.items())
        body = (f"<g class='node status-{e(n.status, quote=True)}' data-node='{e(n.id, quote=True)}'{extra}>"
                f"<title>{e(n.label)}{(' — ' + e(second)) if second else ''}</title>"
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{NODE_W}' height='{NODE_H}' rx='6'/>"
                f"<text class='label' x='{x + 10:.1f}' y='{y + 20:.1f}'>{e(label)}</text>"
                f"<text class='sub' x='{x + 10:.1f}' y='{y + 38:.1f}'>{e(second)}</text></g>")
        out.append(f"<a href='{e(n.href, quote=True)}'>{body}</a>" if n.href else body)
    out.append("</g></svg>")
    return "".join(out)
