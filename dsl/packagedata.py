"""Data files shipped inside the package (the grammar, the built-in market, explain pages)."""

from __future__ import annotations

import importlib
from pathlib import Path


def data_text(package: str, resource: str) -> str:
    """The text (UTF-8) of a data file shipped in `package`. Read beside the package's
    own modules when they are files (a wheel or an editable install): `importlib.resources`
    and the zip support it loads cost ~4 ms of every command's start (issue 17); it is
    still used for a package that is not a folder on disk (a zip import)."""
    anchor = getattr(importlib.import_module(package), "__file__", None)
    if anchor:
        path = Path(anchor).parent / resource
        if path.is_file():
            return path.read_text(encoding="utf-8")
    from importlib import resources

    return resources.files(package).joinpath(resource).read_text(encoding="utf-8")
