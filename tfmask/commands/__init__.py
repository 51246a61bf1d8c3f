"""The `tfmask` subcommands: one module per group, each with `COMMANDS`, a table of
`name -> (add_parser, check, run)`.

`add_parser(subparsers)` declares the command's arguments; `check(args)` parses what the
command needs in plain Python (no TensorFlow), raising `CliError` or `ConfigError` with a
one-line message; `run(args, checked)` does the work and returns the exit status. `tfmask.cli`
ties them together and is the only module that reads the command line or the environment.
"""

from __future__ import annotations

import argparse
import os


class CliError(Exception):
    """An error to print as one line, without a stack trace."""


def with_default(text: str, value) -> str:
    """A help text with the flag's default (the configuration's, since the flag's own default
    is None: only a flag that is given overrides a recipe)."""
    return f"{text} (default: {value})"


def apply_flags(experiment, args, flags: dict[str, str]) -> None:
    """Copies every flag that was given onto its field (`flags`: `{"train.batch_size":
    "--batch-size"}`); a flag that was not given is None and leaves a recipe's value."""
    for key, flag in flags.items():
        value = getattr(args, flag[2:].replace("-", "_"), None)  # a task may lack the flag
        if value is not None:
            section, field = key.split(".")
            setattr(getattr(experiment, section), field, value)


def add_common(p) -> None:
    """The options every command has: --debug also after the command's name."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show TensorFlow's start-up lines and full stack traces")


def add_config_options(p) -> None:
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set train.clipnorm=0.5")
    p.add_argument("--recipe", metavar="FILE",
                   help="a recipe (pipelines/*.py defining config()); flags override it")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")


def add_options(group, *rows) -> None:
    """Adds `(flag, kind, help)` options; kind: int or float (a number), a tuple of choices,
    a metavar (a string), or "switch" (on when given; None otherwise, so a recipe's value
    stands)."""
    for flag, kind, help_ in rows:
        if kind == "switch":
            group.add_argument(flag, action="store_true", default=None, help=help_)
        elif isinstance(kind, tuple):
            group.add_argument(flag, choices=kind, help=help_)
        elif kind in (int, float):
            group.add_argument(flag, type=kind, metavar="N" if kind is int else "X", help=help_)
        else:
            group.add_argument(flag, metavar=kind, help=help_)


def check_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out}: not a directory")


def validated(resolve):
    """A command's check: the experiment `resolve(args)` builds, validated, and `--out`."""
    def check(args):
        experiment = resolve(args)
        experiment.validate()
        check_out(args.out)
        return experiment
    return check
