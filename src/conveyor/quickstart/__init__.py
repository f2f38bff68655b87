"""``conveyor quickstart``: the whole loop on bundled data, told as a story.

Stages run in order in a fresh project folder; each later part of conveyor adds its stage
(pipelines, gates, serving, monitoring). Today: train and track several models on
scikit-learn's bundled breast-cancer data set and compare them.
"""

from conveyor.quickstart._run import run

__all__ = ["run"]
