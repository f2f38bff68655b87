"""``conveyor quickstart``: the whole loop on bundled data, told as a story.

Stages run in order in a fresh project folder: track, version, orchestrate, package, gate,
serve, and monitor with a retraining that closes the loop.
"""

from conveyor.quickstart._run import run

__all__ = ["run"]
