"""Export files: where the binary answers of a walk's actions go, never over another file.

An :class:`~halnav.ActionRule` with ``export_dir`` streams each binary answer (a PST, a
ZIP) to ``export_dir/<stem>.download`` and then gives it its name: the stem from the
document's ``email``, ``name`` or ``id`` (characters outside ``[A-Za-z0-9._@-]`` become
``_``), the extension from :meth:`~halnav.Navigator.download_extension` (the Veeam profile
knows its PST, MSG and ZIP files by their first bytes). A name in use - by a file, or by
another export of the walk - gets ``-1``, ``-2``, ... added: nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from pathlib import Path
from typing import Final

from ._model import Document

__all__ = ["Exports"]

_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._@-]+")


def stem_of(doc: Document) -> str:
    """A safe file name (without extension) from the document's email, name or id."""
    for key in ("email", "name", "id"):
        value = doc.state.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            safe = _UNSAFE_NAME.sub("_", str(value)).strip("._")
            if safe:
                return safe[:120]
    return "export"


def head_of(path: Path) -> bytes:
    """The first 8 bytes of ``path`` (b"" if it cannot be read)."""
    try:
        with path.open("rb") as file:
            return file.read(8)
    except OSError:
        return b""


class Exports:
    """The export files of one walk: stems reserved as actions are queued, files placed.

    ``resumed``: the walk continues a killed run, whose stems are reserved again
    (:meth:`keep`) and whose files may already be in place (they are replaced).
    """

    __slots__ = ("_reserved", "_resumed")

    def __init__(self, *, resumed: bool = False) -> None:
        self._reserved: set[str] = set()
        self._resumed = resumed

    def resumed(self) -> None:
        """The walk continues a stored one (see the class)."""
        self._resumed = True

    def keep(self, stem: str) -> None:
        """``stem`` (a pending action's, from the resume state) stays reserved."""
        self._reserved.add(stem)

    def reserve(self, directory: str, doc: Document) -> str:
        """A path stem in ``directory`` for ``doc``'s export that no file and no other
        export of this walk uses yet."""
        base, stem = Path(directory), stem_of(doc)
        candidate, n = stem, 0
        while True:
            path = str(base / candidate)
            if path not in self._reserved and not glob.glob(glob.escape(path) + ".*"):
                self._reserved.add(path)
                return path
            n += 1
            candidate = f"{stem}-{n}"

    def place(self, download: Path, stem: str, ext: str) -> Path:
        """Move the finished download to ``stem + ext`` without overwriting any file.

        A resumed walk may find its own file from the killed run there: the stem was
        reserved for this action, so that file is replaced.
        """
        final = Path(stem + ext)
        if self._resumed and final.exists():
            download.replace(final)
            return final
        n = 0
        while True:
            try:
                os.link(download, final)  # fails if final exists: never overwrite
            except FileExistsError:
                n += 1
                final = Path(f"{stem}-{n}{ext}")
                continue
            except OSError:  # no hard links here: a check, then a rename
                if final.exists():
                    n += 1
                    final = Path(f"{stem}-{n}{ext}")
                    continue
                download.replace(final)
                return final
            with contextlib.suppress(OSError):
                download.unlink()
            return final
