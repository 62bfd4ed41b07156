"""CPU of each step the service takes for an uploaded frame, one thread, no HTTP.

``--files`` uint32 TIFFs of ``--size`` pixels a side (as bench_serve.py's) are sent through
what ``POST /api/tag/file`` does with a body once it has arrived, one step at a time over
all files, and each step's mean CPU ms a frame is printed (user + system of this thread,
system in brackets): joining the received chunks (as Starlette's ``request.body()``),
splitting the multipart body (``parse_form``), the content hash (BLAKE3, the service's;
SHA-256, its earlier one), saving under the content name (hash, temporary name, write,
rename: ``UploadFolder.save``), counting frames, the fsync.

``--write-rounds`` then times writing new 4 MB-sized files (temporary name, write, fsync,
rename) in the folder, taking turns each round between keeping their page cache and freeing
it once flushed (``drop_cached``, what the service does once an upload is flushed and read):
the median CPU ms of the write alone, side by side. On a virtual machine fresh page-cache
pages may cost the writer far more than reused ones.

    python benchmarks/bench_upload.py --size 1000 --files 20 --folder /tmp/somewhere
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_predict import write_files


def thread_cpu() -> tuple[float, float]:
    """(user + system, system) CPU seconds of the calling thread so far (the first to the
    nanosecond; the second counted in clock ticks: only its sum over many calls is right)."""
    return time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD).ru_stime


def timed(step: Callable[[], object]) -> tuple[float, float]:
    """(CPU ms, of which system) of one call of ``step``."""
    cpu, system = thread_cpu()
    step()
    after, system_after = thread_cpu()
    return 1e3 * (after - cpu), 1e3 * (system_after - system)


def multipart(path: Path) -> tuple[bytes, str]:
    """The body and Content-Type bench_serve.py's clients send for ``path``."""
    boundary = os.urandom(16).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: image/tiff\r\n\r\n'
    )
    body = b"".join([head.encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"


def write_new(path: Path, data: bytes, drop: bool) -> tuple[float, float]:
    """(CPU ms, of which system) of writing ``data`` to a new file under a temporary name;
    then fsync, rename and (``drop``) free its page cache, not timed."""
    from scattertag.io.files import drop_cached, temporary_name

    tmp = temporary_name(path)
    cpu = timed(lambda: tmp.write_bytes(data))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if drop:
        drop_cached(path)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--write-rounds", type=int, default=4)
    parser.add_argument("--folder", help="where uploads are written (default: a temporary one)")
    args = parser.parse_args()

    from blake3 import blake3

    from scattertag.io.files import fsync_file
    from scattertag.io.readers import count_frames, load_readers
    from scattertag.parallel import reuse_freed_memory
    from scattertag.serve.uploads import UploadFolder, parse_form

    reuse_freed_memory()  # as the service does
    load_readers()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = write_files(tmp / "in", args.size, args.files)
        bodies = [multipart(p) for p in files]
        uploads = UploadFolder(tmp / "uploads")
        steps: dict[str, list[tuple[float, float]]] = {}
        for body, content_type in bodies:
            chunks = [body[i : i + 2**18] for i in range(0, len(body), 2**18)]  # uvloop's reads
            steps.setdefault("join", []).append(timed(lambda: b"".join(chunks)))  # noqa: B023
            form: list = []
            steps.setdefault("parse_form", []).append(
                timed(lambda: form.append(parse_form(body, content_type)))  # noqa: B023
            )
            data = form[0].files["file"][1]
            steps.setdefault("blake3", []).append(timed(lambda: blake3(data).digest()))  # noqa: B023
            steps.setdefault("sha256", []).append(timed(lambda: hashlib.sha256(data).digest()))  # noqa: B023
            saved: list = []
            steps.setdefault("save", []).append(
                timed(lambda: saved.append(uploads.save(data, ".tif")))  # noqa: B023
            )
            steps.setdefault("count_frames", []).append(timed(lambda: count_frames(saved[0])))  # noqa: B023
            steps.setdefault("fsync", []).append(timed(lambda: fsync_file(saved[0])))  # noqa: B023
        uploads.close()
        print(
            f"{args.files} TIFFs of {args.size}x{args.size} ({len(bodies[0][0]):,} bytes a body), "
            f"load average {os.getloadavg()[0]:.1f}; CPU ms a frame (system):"
        )
        for step, values in steps.items():
            cpu, system = (statistics.mean(v[i] for v in values) for i in (0, 1))
            print(f"  {step:13s} {cpu:6.2f} ({system:.2f})")

        if args.write_rounds:
            compare_writes(tmp, bodies[0][0], args.files, args.write_rounds)


def compare_writes(folder: Path, data: bytes, files: int, rounds: int) -> None:
    """Print the CPU ms of writing new files of ``data`` keeping their page cache and freeing
    it once flushed, taking turns which goes first each round."""
    writes: dict[bool, list[float]] = {False: [], True: []}
    for k in range(rounds):
        for drop in (k % 2 == 0, k % 2 == 1):
            where = folder / f"writes-{k}-{drop}"
            where.mkdir()
            writes[drop].append(
                statistics.mean(write_new(where / f"{i}.tif", data, drop)[0] for i in range(files))
            )
    kept, dropped = (statistics.median(writes[d]) for d in (False, True))
    print(
        f"writing a new file of {len(data):,} bytes, CPU ms (median of {rounds} rounds, each "
        f"the mean of {files}): page cache kept {kept:.2f}, freed once flushed {dropped:.2f}, "
        f"ratio {dropped / kept:.2f} (load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
