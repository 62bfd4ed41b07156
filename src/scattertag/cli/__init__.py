"""The ``scattertag`` command line: one subcommand per pipeline step.

Each subcommand is a module ``scattertag.cli.NAME`` defining

    configure(parser: argparse.ArgumentParser) -> None   # declare the arguments
    run(args: argparse.Namespace) -> int                  # map them to a config, call the library

and nothing else: the work is done by library functions that take typed configs.
Modules are imported only when their subcommand runs, so ``scattertag --help`` is fast
and a broken optional dependency of one step does not break the others.

Exit status, the same for every command:

* 0: everything was done;
* 1: some inputs failed (a file that could not be tagged, a shard failing its checksum);
  ``run`` returns it and the command has said which;
* 2: bad arguments or unusable input. The command prints one line,
  ``scattertag COMMAND: error: MESSAGE``, on stderr and no traceback. Library code signals
  it by raising :class:`scattertag.errors.UserError` (a ValueError: the library's
  ValueErrors and OSErrors name the file or argument at fault and are reported alike).
  ``SCATTERTAG_DEBUG=1`` shows the traceback instead;
* 130 / 143: stopped by Ctrl-C / SIGTERM (workers stopped, no temporary files left).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

from scattertag import __version__
from scattertag.errors import UserError
from scattertag.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, terminate_on_signals

#: name -> (module defining configure and run, one-line help), in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "preview": ("scattertag.cli.preview", "draw a montage of simulated images with their tags"),
    "fb": (
        "scattertag.cli.fb",
        "show images, their Fourier-Bessel coefficients and reconstructions",
    ),
    "build": ("scattertag.cli.build", "simulate a dataset of ten HDF5 shards"),
    "inspect": ("scattertag.cli.inspect", "summarise and verify a dataset directory"),
    "train": ("scattertag.cli.train", "train the image, coefficient or joint network"),
    "evaluate": (
        "scattertag.cli.evaluate",
        "score a trained model on a dataset's test shard or on labelled files",
    ),
    "study": ("scattertag.cli.study", "compare image sizes: build, train and score at each"),
    "demo": ("scattertag.cli.demo", "end-to-end demo: small dataset, three views, mAP table"),
    "predict": ("scattertag.cli.predict", "tag real detector files"),
    "calibrate": (
        "scattertag.cli.calibrate",
        "fit per-tag probability calibration of a model on a dataset",
    ),
    "finetune": (
        "scattertag.cli.finetune",
        "adapt a tagger to labelled frames (fine-tune with replay, recalibrate)",
    ),
    "show": ("scattertag.cli.show", "draw one detector file with its predicted tags"),
    "serve": ("scattertag.cli.serve", "tagging service with a web page (folders, uploads, Tiled)"),
}

T = TypeVar("T")

#: Exit statuses.
OK, SOME_FAILED, BAD_INPUT = 0, 1, 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are raised as :class:`UserError` instead of printed with the usage."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage and exiting."""
        raise UserError(message)


def build_parser(command: str | None = None) -> tuple[ArgumentParser, dict]:
    """The top-level parser; only ``command``'s module is imported and configured."""
    parser = ArgumentParser(prog="scattertag", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scattertag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.configure(p)
            modules[name] = module
    return parser, modules


def config_from(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """A ``cls`` config from the arguments named like its fields, ``values`` taking precedence."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**given, **values})


def default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of config dataclass ``cls`` (for argparse)."""
    return next(f.default for f in fields(cls) if f.name == name)


def add_symmetries_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--symmetries K``: logits averaged over K symmetries of the frame (models.symmetry)."""
    parser.add_argument(
        "--symmetries",
        type=int,
        default=1,
        metavar="K",
        help="average the network's logits over K symmetries of the frame: 1 (none), 2 (a "
        "mirror), 4 (the mirrors), 8 (mirrors and quarter turns); K times the network's "
        "cost (default: %(default)s)",
    )


def warn_skipped(messages: list[str]) -> None:
    """Print the rows a command skipped (one message each) on stderr, if any."""
    if messages:
        print(f"{len(messages)} row(s) skipped:", file=sys.stderr)
        for message in messages:
            print(f"  {message}", file=sys.stderr)


def report(prog: str, exc: BaseException) -> int:
    """Print ``exc`` as one line ``PROG: error: MESSAGE`` on stderr; returns exit status 2."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: error: {message}", file=sys.stderr)
    return BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scattertag`` program; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    prog = f"scattertag {command}" if command in COMMANDS else "scattertag"
    try:
        parser, modules = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return BAD_INPUT
        with terminate_on_signals():  # SIGTERM cleans up like Ctrl-C: workers stopped, no .tmp
            code = int(modules[args.command].run(args))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else OK
    except KeyboardInterrupt as exc:
        print(f"{prog}: stopped ({exc or 'interrupted'})", file=sys.stderr)
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:  # UserError is a ValueError
        if os.environ.get("SCATTERTAG_DEBUG"):
            raise
        code = report(prog, exc)
    shards = sys.modules.get("scattertag.data.shards")
    if shards is not None and shards.UNCLOSED:  # HDF5 would crash at a normal exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
