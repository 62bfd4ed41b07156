"""Every command in the README runs as written from the root of a fresh clone.

Commands are the lines of the README's code blocks that start with ``scattertag``,
``python`` or ``bash``. A ``scattertag`` command must parse with the real command line
(unknown options or bad values fail), and every file it reads must be in the repository
or be written by an earlier README command (``--out``); scripts must exist and answer
``--help``. Running them all would take hours (datasets, training); the demo itself runs
in tests/test_cli.py.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scattertag.cli import build_parser
from scattertag.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: Options whose value is a file or folder the command reads.
INPUT_OPTIONS = {"--manifest", "--labels", "--centres", "--poni", "--mask", "--model", "--data"}
#: Commands whose positional arguments are files they read.
READS_POSITIONALS = {"predict", "show", "fb", "inspect"}


def readme_commands() -> list[str]:
    """The commands of the README's code blocks, in order, without comments or ``&&`` chains."""
    commands, fenced = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            continue
        text = line.strip().split("  #")[0].strip().removesuffix(" &")
        for part in text.split("&&"):
            part = part.strip()
            if part.split(" ")[0] in {"scattertag", "python", "python3", "bash"}:
                commands.append(part)
    return commands


COMMANDS = readme_commands()


def test_readme_has_the_two_setup_commands_first():
    assert COMMANDS[0].startswith("bash scripts/setup.sh")
    first_lines = README.read_text().splitlines()[:6]
    assert any("scattertag demo" in line for line in first_lines)
    assert any("pytest" in line for line in first_lines)


def written_before(index: int) -> set[Path]:
    """Files and folders that README commands before ``index`` write (their ``--out``)."""
    out = set()
    for command in COMMANDS[:index]:
        argv = shlex.split(command)
        out |= {(ROOT / argv[i + 1]).resolve() for i, a in enumerate(argv[:-1]) if a == "--out"}
    return out


def exists_or_written(path: str, index: int) -> bool:
    """True if ``path`` (a glob allowed) is in the clone or an earlier command writes it."""
    full = (ROOT / path).resolve()
    if any(True for _ in ROOT.glob(path)) or full.exists():
        return True
    return any(full == w or w in full.parents for w in written_before(index))


@pytest.mark.parametrize(
    "index", [i for i, c in enumerate(COMMANDS) if c.startswith("scattertag ")]
)
def test_scattertag_command_parses_and_its_inputs_exist(index):
    argv = shlex.split(COMMANDS[index])[1:]
    command = argv[0]
    parser, _ = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except (SystemExit, UserError) as err:  # the CLI's way of saying the arguments are wrong
        pytest.fail(f"README command does not parse ({err}): {COMMANDS[index]}")
    reads = [
        argv[i + 1] for i, a in enumerate(argv[:-1]) if a in INPUT_OPTIONS and argv[i + 1] != "-"
    ]
    if command in READS_POSITIONALS:
        for name in ("files", "file", "data", "directory", "dataset"):
            value = getattr(args, name, None)
            reads += [str(v) for v in ([value] if isinstance(value, (str, Path)) else value or [])]
    local = [p for p in reads if "://" not in p]  # Tiled nodes are served, not files
    missing = [p for p in local if not exists_or_written(p, index)]
    assert not missing, f"{COMMANDS[index]}: reads {missing}, not in a fresh clone"


@pytest.mark.parametrize(
    "index",
    [i for i, c in enumerate(COMMANDS) if c.split(" ")[0] in {"python", "python3", "bash"}],
)
def test_scripts_exist_and_answer_help(index):
    argv = shlex.split(COMMANDS[index])
    if argv[1] == "-m":
        assert argv[2].split(".")[0] in {"pytest", "scattertag"}, COMMANDS[index]
        return
    script = ROOT / argv[1]
    assert script.is_file(), f"{COMMANDS[index]}: {argv[1]} is not in the repository"
    if script.suffix == ".py":
        done = subprocess.run(
            [sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()[-500:]
