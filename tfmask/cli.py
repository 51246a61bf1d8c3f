"""The `tfmask` command line. The only module that reads `sys.argv` or the environment.

A command runs in two phases, so that a mistake is answered at once:

1. `check`: parse the arguments, resolve the configuration (recipe, then flags, then `--set`)
   and validate it, paths included, in plain Python. Help, `--version` and every argument
   error come back in a fraction of a second, before TensorFlow (seconds to import) loads.
2. `run`: import TensorFlow (its start-up lines held back unless `--debug`) and do the work.
   A run directory this command created is removed again if the command fails before
   training has written anything worth keeping.
"""


from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile

import tfmask
from tfmask.commands import (CliError, checkpoint, finetune, pretrain, serving, show, study,
                             weights)
# The experiments a command line asks for, for Python callers and tests.
from tfmask.commands.finetune import finetune_experiment  # noqa: F401
from tfmask.commands.pretrain import pretrain_experiment  # noqa: F401
from tfmask.config import load_recipe  # noqa: F401


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line: what is wrong and where help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: command -> (add_parser, check: arguments in, what `run` needs out, no TensorFlow; run),
#: in the order `tfmask --help` lists them.
_COMMANDS = {**pretrain.COMMANDS, **checkpoint.COMMANDS, **finetune.COMMANDS,
             **serving.COMMANDS, **weights.COMMANDS, **show.COMMANDS, **study.COMMANDS}
#: Commands that never load TensorFlow: `show` reads JSON files, `study` runs each of its
#: cells as a tfmask command in a process of its own.
_WITHOUT_TENSORFLOW = {"show", "study"}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tfmask", description="BERT masked-language-model pretraining and fine-tuning "
                                   "with TensorFlow and Keras.")
    parser.add_argument("--version", action="version", version=f"tfmask {tfmask.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show TensorFlow's start-up lines and full stack traces")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _, _ in _COMMANDS.values():
        add_parser(sub)
    return parser


#: What TensorFlow's native libraries print while `import tensorflow` runs, before their
#: logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot hide it), once per library that carries
#: its own copy of the logger: absl's notice, then INFO and WARNING lines (oneDNN's notice,
#: "Could not find cuda drivers", CPU instruction sets). ERROR lines are kept.
_IMPORT_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|"
                           r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines kept out of the user's way.

    TF_CPP_MIN_LOG_LEVEL=3 (unless the user set it) hides the lines TensorFlow logs once it
    runs (cuInit failures on a machine without a GPU, oneDNN's int64 notice); the lines its
    libraries print while loading ignore it, so stderr goes to a temporary file during the
    import and all but those lines are printed afterwards."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _IMPORT_NOISE.match(line)))


#: What a run directory holds before its first training step (configuration, vocabulary,
#: labels, the embedded data written for it).
_BEFORE_TRAINING = {"config.json", "vocab.txt", "labels.txt", "embedded_corpus",
                    "embedded_data", "environment.json"}


@contextlib.contextmanager
def _removed_on_failure(out: str | None):
    """Removes `out` (and the parents made for it) when the command fails, if the command
    created it and it holds only `_BEFORE_TRAINING` files: a folder that existed before, or
    one with a checkpoint, logs or a model in it, is left as it is."""
    created = []  # `out` and each missing parent, innermost first
    path = os.path.abspath(out) if out is not None else None
    while path and not os.path.lexists(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        yield
    except BaseException:
        if created and os.path.isdir(created[0]) and (
                set(os.listdir(created[0])) <= _BEFORE_TRAINING):
            shutil.rmtree(created[0], ignore_errors=True)
            for parent in created[1:]:
                with contextlib.suppress(OSError):  # not empty: something else is there now
                    os.rmdir(parent)
        raise


def _quiet_h5py_collection() -> None:
    """Drops what h5py's objects print while they are collected after a failed write (a full
    disk): the error itself is reported once, as one line. Both of Python's hooks for errors
    nobody can catch are wrapped (h5py's Cython code goes through each)."""
    if getattr(sys.unraisablehook, "tfmask", False):
        return

    def from_h5py(tb) -> bool:
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is not None and "h5py" in tb.tb_frame.f_code.co_filename

    unraisable, excepthook = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = lambda u: None if "h5py" in f"{u.object!r} {u.err_msg}" or from_h5py(
        u.exc_traceback) else unraisable(u)
    sys.excepthook = lambda kind, value, tb: None if from_h5py(tb) else excepthook(kind, value,
                                                                                  tb)
    sys.unraisablehook.tfmask = True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tfmask` console script."""
    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet_h5py_collection()
    _, check, run = _COMMANDS[args.command]
    try:
        prepared = check(args)
        if not args.debug and args.command not in _WITHOUT_TENSORFLOW:
            _import_tensorflow_quietly()
        with _removed_on_failure(getattr(args, "out", None)):
            return run(args, prepared)
    except KeyboardInterrupt:
        print("tfmask: interrupted (the same command again resumes, or redoes, it)",
              file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  every error is one line (--debug: the traceback)
        if args.debug:
            raise
        message, status = one_line(e)
        print(f"tfmask {args.command}: error: {message}", file=sys.stderr)
        return status


def one_line(error: Exception) -> tuple[str, int]:
    """An error as one line, and the exit status: 2 for what the user can fix (arguments,
    files, configuration, data: `CliError`, `ValueError`, `OSError`, a TensorFlow op error,
    memory), 1 for anything else, which says it is unexpected."""
    expected = isinstance(error, (CliError, ValueError, OSError, MemoryError))
    text = str(error)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        expected, text = True, error.message
        if "No space left on device" in text or "Disk quota exceeded" in text:
            text = f"the disk is full: {text.strip().splitlines()[0]}"
        elif isinstance(error, tf.errors.ResourceExhaustedError):
            text = f"out of memory ({text.strip().splitlines()[0]}); try a smaller --batch-size"
    if isinstance(error, MemoryError):
        text = "out of memory; try a smaller --batch-size (or --seq-len)"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code"):  # AutoGraph: the error is last
        lines = lines[-1:] + lines[:-1]
    first = lines[0] if lines else type(error).__name__
    # TensorFlow's graph decorations: {{function_node ...}} and [[{{node ...}}]].
    first = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[\[.*?\]\]", "", first).strip()
    if len(lines) > 1:
        first += " (more with --debug)"
    if not expected:
        return (f"{type(error).__name__}: {first} (unexpected: --debug shows where; please "
                "report it)"), 1
    return first, 2


if __name__ == "__main__":
    sys.exit(main())