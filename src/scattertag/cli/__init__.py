"""The ``scattertag`` command line: one subcommand per pipeline step.

Each subcommand lives in its own module, which defines

    configure(parser: argparse.ArgumentParser) -> None   # add the arguments
    run(args: argparse.Namespace) -> int                  # do the work, return exit code

Modules are imported only when their subcommand runs, so ``scattertag --help`` is fast
and a broken optional dependency of one step does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from scattertag import __version__
from scattertag.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, terminate_on_signals

#: name -> (module, one-line help), in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "preview": (
        "scattertag.simulate.preview",
        "draw a montage of simulated images with their tags",
    ),
    "fb": (
        "scattertag.features.show",
        "show images, their Fourier-Bessel coefficients and reconstructions",
    ),
    "build": ("scattertag.data.build", "simulate a dataset of ten HDF5 shards"),
    "inspect": ("scattertag.data.inspect", "summarise and verify a dataset directory"),
    "train": ("scattertag.train", "train the image, coefficient or joint network"),
    "evaluate": ("scattertag.evaluate", "score a trained model on a dataset's test shard"),
    "study": ("scattertag.study", "compare image sizes: build, train and score at each"),
    "demo": ("scattertag.demo", "end-to-end demo: small dataset, three views, mAP table"),
    "predict": ("scattertag.prediction.cli", "tag real detector files"),
    "calibrate": (
        "scattertag.adapt.calibrate",
        "fit per-tag probability calibration of a model on a dataset",
    ),
    "finetune": (
        "scattertag.adapt.command",
        "adapt a tagger to labelled frames (fine-tune with replay, recalibrate)",
    ),
    "show": ("scattertag.prediction.show", "draw one detector file with its predicted tags"),
    "serve": ("scattertag.serve.cli", "tagging service with a web page (folders, uploads, Tiled)"),
}


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The top-level parser; only ``command``'s module is imported and configured."""
    parser = argparse.ArgumentParser(prog="scattertag", description=__doc__.splitlines()[0])
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scattertag`` program."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser, modules = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    with terminate_on_signals():  # SIGTERM cleans up like Ctrl-C: workers stopped, no .tmp left
        try:
            code = int(modules[args.command].run(args) or 0)
        except KeyboardInterrupt as exc:
            print(f"scattertag {args.command}: stopped ({exc or 'interrupted'})", file=sys.stderr)
            code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    shards = sys.modules.get("scattertag.data.shards")
    if shards is not None and shards.UNCLOSED:  # HDF5 would crash at a normal exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
