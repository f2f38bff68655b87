"""The web UI served by ``conveyor server`` at ``/`` (and by ``conveyor ui`` for one person).

Server-rendered pages (Jinja2, autoescaped) with small hand-written JavaScript and CSS in
``static/``: no CDN, no third-party files, no build step. Each page group is a module in
``conveyor.ui.pages`` exposing ``routes`` (and optionally ``NAV``); :data:`conveyor.ui.pages.GROUPS`
lists them in one place. Pages ask the server's permission policy before they show anything
(:mod:`conveyor.ui._access`); a missing thing is the 404 page, a refused one the 403 page.
"""

from __future__ import annotations

from conveyor.ui._app import create_ui

__all__ = ["create_ui"]
