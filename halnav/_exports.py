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
import os
import re
from pathlib import Path
from typing import Final

from ._model import Document

__all__ = ["Exports", "remove_stale_parts"]

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


def stem_of_name(name: str) -> str:
    """``name`` if it is a stem :func:`stem_of` (and a ``-N`` suffix) could have made."""
    safe = _UNSAFE_NAME.sub("_", name).strip("._")[:130]
    return safe if safe == name else ""


def head_of(path: Path) -> bytes:
    """The first 8 bytes of ``path`` (b"" if it cannot be read)."""
    try:
        with path.open("rb") as file:
            return file.read(8)
    except OSError:
        return b""


_PART: Final = re.compile(r"\..+\.(\d+)\.[^.]+\.part")
"""A download in progress: ``.<name>.<pid>.<random>.part`` (see ``Transport``)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale_parts(directory: Path) -> int:
    """Delete the partial downloads in ``directory`` whose process is gone (a SIGKILL left
    them: hidden files of mailbox data no one would ever use); return how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            found = _PART.fullmatch(entry.name)
            if found is not None and int(found[1]) != os.getpid() and not _alive(int(found[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _stems(directory: Path) -> set[str]:
    """Every stem a file in ``directory`` takes: ``a.b@c.com.pst`` takes ``a``, ``a.b@c``
    and ``a.b@c.com`` (what ``glob(stem + ".*")`` would find), read once."""
    taken: set[str] = set()
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            dot = name.find(".", 1)
            while dot > 0:
                taken.add(str(directory / name[:dot]))
                dot = name.find(".", dot + 1)
    return taken


class Exports:
    """The export files of one walk: stems reserved as actions are queued, files placed.

    ``resumed``: the walk continues a killed run, whose stems are reserved again
    (:meth:`keep`) and whose files may already be in place (they are replaced). The first
    use of a directory removes the partial downloads killed runs left there
    (:func:`remove_stale_parts`) and reads which names its files take, once: reserving
    a name costs O(1), not a directory scan per candidate.
    """

    __slots__ = ("_next", "_reserved", "_resumed", "_taken")

    def __init__(self, *, resumed: bool = False) -> None:
        self._reserved: set[str] = set()
        self._resumed = resumed
        self._taken: dict[Path, set[str]] = {}  # directory -> stems its files take
        self._next: dict[str, int] = {}  # stem -> the next suffix to try

    def resumed(self) -> None:
        """The walk continues a stored one (see the class)."""
        self._resumed = True

    def keep(self, stem: str) -> None:
        """``stem`` (a pending action's, from the resume state) stays reserved."""
        self._reserved.add(stem)

    def reserve(self, directory: str, doc: Document) -> str:
        """A path stem in ``directory`` for ``doc``'s export that no file and no other
        export of this walk uses yet."""
        return self.reserve_stem(directory, stem_of(doc))

    def reserve_stem(self, directory: str, stem: str) -> str:
        """:meth:`reserve` for a given (safe) ``stem``."""
        base = Path(directory)
        taken = self._taken.get(base)
        if taken is None:
            remove_stale_parts(base)
            taken = self._taken[base] = _stems(base)
        first = str(base / stem)
        n = self._next.get(first, 0)
        while True:
            path = first if n == 0 else f"{first}-{n}"
            n += 1
            if path not in self._reserved and path not in taken:
                self._reserved.add(path)
                self._next[first] = n
                return path

    def within(self, stem: str, directory: str) -> bool:
        """Whether ``stem`` (from a resume state) names a file directly in ``directory``:
        a state file is data, and must not send an export anywhere else."""
        path, base = Path(stem), Path(directory)
        return path.parent.resolve() == base.resolve() and path.name == stem_of_name(path.name)

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
