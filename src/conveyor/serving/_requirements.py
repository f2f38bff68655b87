"""The ``requirements.txt`` of a build context: PEP 508 requirement lines only.

A model package's ``requirements`` come from whoever wrote ``conveyor-model.json``, so they
are untrusted text that ends up in ``pip install -r``. pip reads far more than
requirements from such a file: options (``--extra-index-url``, ``--index-url``,
``-e git+…``, ``--trusted-host``), URLs and paths of archives, and a newline in one entry
starts a new line of options. Only lines that ``packaging`` parses as a PEP 508
requirement without a URL (``name[extras] specifier ; marker``) are accepted, each
rewritten in its canonical form; anything else is refused, naming the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata as importlib_metadata

from conveyor.errors import InvalidInput

#: distribution name of conveyor itself (the build context carries it as a wheel)
CONVEYOR_DIST = "conveyor-mlops"
_HINT = ("a package's requirements are PEP 508 lines such as 'scikit-learn==1.5.2' or "
         "'torch>=2.3; python_version >= \"3.11\"': no pip options, URLs, paths or line breaks; "
         "re-save the model with conveyor.models.save, or fix 'requirements' in conveyor-model.json")


def _refuse(line: object, why: str) -> InvalidInput:
    return InvalidInput(
        f"model package requirement {line!r} is refused: {why}", field="requirements", value=line, hint=_HINT
    )


def parse_requirement(line: object) -> str:
    """``line`` in canonical PEP 508 form, or ``InvalidInput`` naming it.

    Example::

        >>> parse_requirement("scikit-learn == 1.5.2")
        'scikit-learn==1.5.2'
    """
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(line, str):
        raise _refuse(line, "it is not a string")
    text = line.strip()
    if not text:
        raise _refuse(line, "it is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in line):
        raise _refuse(line, "it holds a line break or another control character")
    if text.startswith("-"):
        raise _refuse(line, "it is a pip option, not a requirement")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise _refuse(line, f"it is not a PEP 508 requirement ({str(exc).splitlines()[0]})") from None
    if requirement.url:
        raise _refuse(line, f"it installs from a URL ({requirement.url}), not from the package index")
    return str(requirement)


def package_requirements(lines: object) -> list[str]:
    """Validate a package's ``requirements`` list (see ``parse_requirement``)."""
    if lines is None:
        return []
    if not isinstance(lines, list):
        raise InvalidInput(
            f"model package requirements must be a list of strings, not {type(lines).__name__}",
            field="requirements", value=lines, hint=_HINT,
        )
    return [parse_requirement(line) for line in lines]


def _key(requirement: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(Requirement(requirement).name))


def conveyor_runtime_pins() -> list[str]:
    """conveyor's own core dependencies, pinned to the versions installed here (markers kept,
    optional extras left out), so the image runs what was tested here."""
    from packaging.requirements import Requirement

    pins: list[str] = []
    for text in importlib_metadata.requires(CONVEYOR_DIST) or ():
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        try:
            installed = importlib_metadata.version(requirement.name)
        except importlib_metadata.PackageNotFoundError:
            continue
        marker = f"; {requirement.marker}" if requirement.marker is not None else ""
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pins.append(f"{requirement.name}{extras}=={installed}{marker}")
    return pins


def merge_pins(package: Sequence[str], defaults: Iterable[str]) -> list[str]:
    """One line per distribution, sorted: the package's own pins win over ``defaults``;
    conveyor itself is never taken from the index (the context carries its wheel)."""
    pins: dict[str, str] = {}
    for line in defaults:
        pins[_key(line)] = line
    for line in package:
        pins[_key(line)] = line
    pins.pop(CONVEYOR_DIST, None)
    return [pins[k] for k in sorted(pins)]


__all__ = ["CONVEYOR_DIST", "conveyor_runtime_pins", "merge_pins", "package_requirements", "parse_requirement"]
