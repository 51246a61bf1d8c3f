"""Putting an export into place safely: staging folders, versions, leftovers, a full disk.

An export is written into a hidden staging folder beside the versions, then renamed into
place (a rename within one folder is atomic), so neither a server nor a reader ever sees half
a version:

    saved_models/NAME/
      1/  2/                          published versions (TF Serving reads integer names only)
      .tmp-export-k3j9x/              an export being written ...
      .tmp-export-k3j9x.lock          ... by the process holding a lock on this file

A killed export leaves its staging folder behind, but not its lock: the kernel releases a
process's `flock` when it dies, however it dies. So the next export into the same folder
removes every staging folder whose lock it can take (`remove_stale`), and never one that a
running export holds.

`publish_pair` gives the strings-in export and the ids-in export the same version number
(`NAME/N` and `NAME-ids/N` are one export), also when several exports run at once: each
claims `NAME-ids/N` first, and only the one that got it renames its other folder to `NAME/N`.

A write that fails for lack of space (or quota) is an `audit.ExportError` naming the folder;
nothing is published and the earlier versions are untouched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile


PREFIX = ".tmp-export-"
_LOCK = ".lock"
# A staging folder or its lock: the prefix and `tempfile`'s 8 random characters.
_STAGED = re.compile(re.escape(PREFIX) + r"[a-z0-9_]{8}(\.lock)?")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an export (None: it can). It must be one plain folder name:
    not empty, no path separator, no `..`, not hidden (hidden names are staging folders), so
    the export stays inside `--base-dir`. Plain Python, for the CLI's check before
    TensorFlow loads."""
    separators = [s for s in (os.sep, os.altsep, "/", "\\") if s]
    if (not name or name.startswith(".") or any(s in name for s in separators)
            or "\0" in name or os.path.isabs(name)):
        return (f"--name {name!r}: give a plain folder name (no '/', no '..', not hidden), "
                "e.g. sentiment; the export goes to --base-dir/NAME/N")
    return None


def check_name(name: str) -> None:
    """Raises `audit.ExportError` when `name_problem(name)` finds one."""
    from tfmask.serve.audit import ExportError  # loads TensorFlow: not at import time

    problem = name_problem(name)
    if problem:
        raise ExportError(problem)


def next_version(model_dir: str) -> int:
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()] if os.path.isdir(
        model_dir) else []
    return max(versions, default=0) + 1


def remove_stale(model_dir: str) -> list[str]:
    """Removes the staging folders (and lock files) of exports that are no longer running;
    returns the folders removed."""
    removed = []
    if not os.path.isdir(model_dir):
        return removed
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if not _STAGED.fullmatch(name):
            continue
        if name.endswith(_LOCK):
            folder = path[:-len(_LOCK)]
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:  # removed meanwhile by its export, which finished
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a running export holds it
                os.close(fd)
                continue
            try:
                if os.path.isdir(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            finally:
                os.close(fd)
        elif os.path.isdir(path) and not os.path.exists(path + _LOCK):
            shutil.rmtree(path, ignore_errors=True)  # an export killed before it had a lock
            removed.append(path)
    return removed


def _locked_name(model_dir: str) -> tuple[int, str]:
    """A new lock file, held by this process: (its descriptor, the staging folder name)."""
    while True:
        fd, lock = tempfile.mkstemp(prefix=PREFIX, suffix=_LOCK, dir=model_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.exists(lock) and os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd, lock[:-len(_LOCK)]
        except BlockingIOError:  # another export's clean-up took it first: it removes it
            pass
        os.close(fd)


@contextlib.contextmanager
def staging(model_dir: str):
    """Yields a new staging folder in `model_dir`, held by this process, after removing the
    stale ones. The folder is removed when the block fails; a block that publishes it has
    renamed it away."""
    with disk_errors(model_dir):
        os.makedirs(model_dir, exist_ok=True)
    removed = remove_stale(model_dir)
    if removed:
        print(f"Removed {len(removed)} unfinished export folder(s) of an interrupted export: "
              f"{', '.join(removed)}", flush=True)
    fd, folder = _locked_name(model_dir)
    try:
        os.mkdir(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone already when it was published
        with contextlib.suppress(FileNotFoundError):
            os.remove(folder + _LOCK)
        os.close(fd)


def publish_pair(text_folder: str, text_dir: str, ids_folder: str, ids_dir: str) -> int:
    """Renames two staging folders to `text_dir/N` and `ids_dir/N` with the same, next free
    `N` of both; returns `N`. The ids folder claims the number first: a parallel export that
    loses the race moves on to the next number."""
    while True:
        version = max(next_version(text_dir), next_version(ids_dir))
        ids_target = os.path.join(ids_dir, str(version))
        try:
            os.rename(ids_folder, ids_target)
        except OSError:
            if os.path.isdir(ids_target):  # taken meanwhile
                continue
            raise
        text_target = os.path.join(text_dir, str(version))
        try:
            os.rename(text_folder, text_target)
            return version
        except OSError:
            if not os.path.isdir(text_target):
                raise
            os.rename(ids_target, ids_folder)  # a stray NAME/N without NAME-ids/N: next


def _is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


@contextlib.contextmanager
def disk_errors(where: str):
    """Turns a write that failed for lack of space (an `OSError`, or TensorFlow's
    `ResourceExhaustedError` from its file writer) into an `ExportError` naming `where`."""
    from tfmask.serve.audit import ExportError  # loads TensorFlow: not at import time

    try:
        yield
    except ExportError:
        raise
    except Exception as e:
        if not _is_disk_full(e):
            raise
        raise ExportError(
            f"{where}: no space left on the device while writing the export "
            f"({str(e).strip().splitlines()[0]}); nothing was published and the earlier "
            "versions are intact: free some space and export again") from e
