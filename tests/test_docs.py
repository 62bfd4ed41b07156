"""Documentation and bundled data: the tag glossary covers the vocabulary; the bundled real
frames exist, read, carry a licence, and are not hidden from git."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scattertag.examples import EXAMPLES_DIR, FRAMES_TABLE, example_frames
from scattertag.io.readers import read_frames
from scattertag.tags import DEFAULT_VOCABULARY

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "tags.md"
#: Budget for the glossary's thumbnails together (bytes).
THUMBNAIL_BUDGET = 1.5e6
#: Budget for the bundled frames together (bytes).
EXAMPLES_BUDGET = 8e6


def glossary_sections() -> dict[str, str]:
    """Text of each '## <title>' section of docs/tags.md, by title."""
    parts = re.split(r"^## (.+)$", GLOSSARY.read_text(), flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def test_glossary_covers_every_tag_with_an_image():
    sections = glossary_sections()
    images = []
    for tag in DEFAULT_VOCABULARY:
        assert tag in sections, f"docs/tags.md has no section '## {tag}'"
        body = sections[tag]
        links = re.findall(r"!\[[^\]]*\]\((tags/[^)]+\.png)\)", body)
        assert links, f"section {tag!r} shows no thumbnail"
        assert (GLOSSARY.parent / links[0]).is_file(), f"{links[0]} (for {tag!r}) is missing"
        assert "**Physically:**" in body and "**Simulator:**" in body, tag
        images.append(GLOSSARY.parent / links[0])
    assert len(set(images)) == len(DEFAULT_VOCABULARY), "two tags share a thumbnail"
    total = sum(p.stat().st_size for p in (GLOSSARY.parent / "tags").glob("*.png"))
    assert total < THUMBNAIL_BUDGET, f"thumbnails take {total} bytes"


def test_bundled_frames_exist_and_read():
    frames = example_frames()
    assert len(frames) >= 4
    listed = {f.path.name for f in frames}
    on_disk = {p.name for p in EXAMPLES_DIR.iterdir() if p.suffix not in (".py", ".md", ".tsv")} - {
        "__pycache__"
    }
    assert on_disk == listed, f"frames.tsv and the folder differ: {on_disk ^ listed}"
    assert sum((EXAMPLES_DIR / n).stat().st_size for n in listed) < EXAMPLES_BUDGET
    for f in frames:
        assert f.path.is_file(), f.path
        read = list(read_frames(f.path))
        assert len(read) == 1, f"{f.path.name}: {len(read)} frames"
        counts = read[0].counts
        assert counts.ndim == 2 and min(counts.shape) >= 16, f.path.name
        assert np.count_nonzero(counts > 0) > 0.1 * counts.size, f"{f.path.name} is empty"
        assert np.all(np.isfinite(f.beam_center)) and f.pixel_size_um > 0, f.path.name
        assert f.description, f.path.name


def test_every_bundled_frame_names_its_licence():
    sections = re.split(r"^## ", (EXAMPLES_DIR / "LICENSES.md").read_text(), flags=re.M)[1:]
    readme = (EXAMPLES_DIR / "README.md").read_text()
    for f in example_frames():
        holding = [s for s in sections if f"`{f.path.name}`" in s]
        assert len(holding) == 1, f"{f.path.name} is named in {len(holding)} licence sections"
        header = holding[0].splitlines()[0]
        assert f.licence in header, f"{f.path.name}: licence {f.licence!r} not in {header!r}"
        assert "```" in holding[0], f"{f.path.name}: its section carries no licence text"
        assert f"`{f.path.name}`" in readme, f"{f.path.name} missing from the README table"


def test_frames_table_is_tab_separated_with_the_documented_columns():
    header = FRAMES_TABLE.read_text().splitlines()[0].split("\t")
    assert header == ["file", "beam_x", "beam_y", "pixel_size_um", "licence", "description"]


def test_bundled_frames_are_not_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = [str(f.path.relative_to(ROOT)) for f in example_frames()]
    names += [str((EXAMPLES_DIR / n).relative_to(ROOT)) for n in ("frames.tsv", "LICENSES.md")]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert not ignored, f".gitignore hides bundled files: {ignored}"
