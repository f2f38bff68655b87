"""The artifact path check of every request: a security boundary (MLflow's CVE classes).

MLflow's path-traversal CVEs (CVE-2023-1177, -2356, -6909, -6974, -6975, -6976,
CVE-2024-1483, -1560, -1594, -3573, -3848, -4263 …) came from ``..`` segments, ``\\``,
``#`` and ``;`` that one layer ignored and another honoured, percent- and
double-encoding decoded after the check, absolute paths and URIs with an empty or
foreign scheme. Starlette decodes the URL once; what is left must be a plain relative
POSIX path, checked by ``conveyor.blobs``' own rule, before anything touches a store.
Nothing is decoded or normalised after the check.
"""

from __future__ import annotations

from conveyor.blobs import check_relative_path
from conveyor.errors import UnsafePath
from conveyor.server._errors import ApiError

_FORBIDDEN = {"%": "percent-encoding left after decoding (double encoding)", "#": "'#'", ";": "';'",
              ":": "':' (a scheme or drive)", "?": "'?'", "\\": "a backslash", "\x00": "NUL"}


def safe_path(path: str, *, allow_empty: bool = False) -> str:
    """``path`` unchanged when it is a safe relative path, else a 400 naming the reason."""
    if path == "" and allow_empty:
        return path
    for char, why in _FORBIDDEN.items():
        if char in path:
            raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid artifact path {path!r}: contains {why}.")
    if any(ord(c) < 32 for c in path):
        raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid artifact path {path!r}: contains a control character.")
    try:
        return check_relative_path(path)
    except UnsafePath as error:
        raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid artifact path {path!r}: {error.message}") from None
