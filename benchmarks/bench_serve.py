"""Service throughput: frames/s of ``scattertag serve`` with concurrent clients vs ``predict``.

``--files`` uint32 TIFFs (rings, Poisson noise; ``--size`` pixels a side) are tagged,
taking turns for ``--repeats`` rounds (median frames/s and CPU ms per frame printed side by
side, with the load average, as the machine is shared):

* ``predict``: ``scattertag.predict(files, workers=W)`` in this process, model loaded once
  (``--workers``, default: ``scattertag predict``'s own, one forked preparing process per
  usable core; 0: one process, its torch threads on the cores);
* ``serve``: a fresh ``scattertag serve`` process on 127.0.0.1 (new state folder each round,
  so nothing is cached; its default ``--workers``, one forked preparing process per core,
  unless ``--serve-workers``), ``--clients`` threads each uploading its share of the same files
  (``POST /api/tag/file``, one multipart upload a request, one keep-alive connection per
  client; on ``http.client`` with the form built by hand, ``--client httpx`` for httpx: the
  same requests, ~2.5 CPU ms a request more in this process, which shares the cores).
  ``--request path``: the service serves a folder (``--folder``) holding the files and
  each client names one in ``POST /api/tag/path`` instead of uploading it, as a pipeline
  on the beamline's file system would; predict reads the same files from disk.
  Timed from the first request to the last answer; the service's start-up (model load)
  is not timed, as predict's is not. Its CPU is the service's (and its workers') plus
  this process's (the clients').

``--timeline`` also prints the median milliseconds of each step of a request, from the
``Server-Timing`` headers of the answers (parse, arrive, prepare: waiting for a preparing
worker or thread and preparing, network-wait: queued until its batch ran, network, back:
until the handler runs again, flush, store, total) and from the clients (the whole
request, and what lies outside the handler: sending, reading the headers, answering, the
client itself).

``--per-thread`` also prints the service's CPU ms per frame by thread (main = event loop,
prepare, model, flush, uvloop = asyncio's default pool, worker-processes = the preparing
processes together; the ``--baseline`` service's too), with the part of it spent in the
kernel (system time: writing files, receiving the bodies), and kernel-threads = the CPU of
the kernel's own threads machine-wide meanwhile (writeback, journal; not the service's
alone on a shared machine), read from ``/proc`` (Linux) with
the thread names from ``py-spy dump`` (``pip install py-spy``), and the share of the round
each thread spent on a CPU, runnable but waiting for one, and blocked (waiting for work,
a lock, the GIL or I/O): a preparing thread blocked for long is a pool left idle.

Bounded: every client sends at most ``ceil(files / clients)`` requests, each round gives
up after ``--round-timeout`` seconds. The model is the shipped tagger unless ``--model``.

    python benchmarks/bench_serve.py --files 200 --size 256 --clients 4
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from bench_predict import write_files

BEAM_FRACTION = (0.1, 0.85)  # write_files puts the beam centre here (x, y as fractions of size)


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(
    state: Path,
    beam: tuple[float, float],
    args,
    dask: str | None = None,
    src: str | None = None,
    workers: int | None = None,
    folder: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """A ``scattertag serve`` process on localhost (``--dask`` ``dask`` when given; the
    package from the ``src`` folder when given; ``--workers`` ``workers`` when given, else
    the service's default; ``--folder`` ``folder`` when given); returns it and its URL once
    it answers."""
    import httpx

    port = free_port()
    command = [
        sys.executable, "-m", "scattertag", "serve", "--port", str(port), "--state", str(state),
        "--beam-center", str(beam[0]), str(beam[1]),
        "--threads", str(args.threads), "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    if workers is not None:
        command += ["--workers", str(workers)]
    if args.model:
        command += ["--model", args.model]
    if dask:
        command += ["--dask", dask]
    if folder is not None:
        command += ["--folder", str(folder)]
    log = open(state.parent / f"{state.name}.log", "w")  # noqa: SIM115 (kept open for the process)
    env = os.environ.copy()
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the service did not start; see {log.name}")


def cpu_seconds() -> float:
    """CPU seconds (user + system) so far of this process and its children, live or ended."""
    process = psutil.Process()
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a worker that just exited
            t = child.cpu_times()
            total += t.user + t.system
    return total


def children_cpu(pid: int) -> float:
    """CPU seconds so far of the live child processes of process ``pid`` (its workers)."""
    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a worker that just exited
            times = child.cpu_times()
            total += times.user + times.system
    return total


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """(CPU seconds, of which in the kernel) so far of each thread of process ``pid``, by
    thread id (Linux /proc: utime + stime, stime)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            out[int(tid)] = ((int(stat[11]) + int(stat[12])) / tick, int(stat[12]) / tick)
    return out


def kernel_threads_cpu() -> float:
    """CPU seconds so far of the kernel's own threads (children of kthreadd: writeback
    kworkers, the journal's jbd2, kswapd), machine-wide: work a process's writes leave to
    the kernel, not counted in its own time (Linux /proc; others' work included)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError, ValueError):  # a process that just ended
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                if stat[1] == "2":
                    total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def thread_sched(pid: int) -> dict[int, tuple[float, float]]:
    """(seconds on a CPU, seconds runnable but waiting for one) so far of each thread of
    process ``pid``, by thread id (Linux ``/proc/.../schedstat``); the rest of the time a
    thread is blocked (waiting for work, a lock, the GIL or I/O)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError):  # a thread that just ended
            on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            out[int(tid)] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names of process ``pid`` by thread id (``py-spy dump``), pool numbers cut."""
    dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True)
    names = {}
    for tid, name in re.findall(r'^Thread (\S+) \(.*?\): "([^"]+)"', dump.stdout, re.M):
        names[int(tid, 16) if tid.startswith("0x") else int(tid)] = re.sub(r"_\d+$", "", name)
    return names


def server_timing(header: str) -> dict[str, float]:
    """Milliseconds by step of a ``Server-Timing`` header (``step;dur=1.2, ...``)."""
    steps = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            steps[name] = float(duration)
    return steps


class FileClient:
    """One keep-alive connection posting files to ``/api/tag/file`` (multipart ``file``):
    with ``http.client`` and the form built by hand, or ``kind="httpx"`` with httpx (the
    same request; ~0.5 instead of ~2.5 CPU ms a request in this process). ``served``: the
    file's folder relative to a folder the service serves, named in ``POST /api/tag/path``
    instead of uploading the file."""

    def __init__(
        self, url: str, timeout: float, kind: str = "stdlib", served: str | None = None
    ) -> None:
        import http.client
        import urllib.parse

        import httpx

        self.kind, self.served = kind, served
        if kind == "httpx":
            self.http = httpx.Client(base_url=url, timeout=timeout)
        else:
            where = urllib.parse.urlsplit(url)
            self.conn = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)

    def post(self, path: Path) -> tuple[int, str, str]:
        """(status, body, Server-Timing header) of one upload (or path request)."""
        if self.served is not None:
            return self.post_path(f"{self.served}/{path.name}")
        if self.kind == "httpx":
            with open(path, "rb") as f:
                r = self.http.post("/api/tag/file", files={"file": (path.name, f)})
            return r.status_code, r.text, r.headers.get("server-timing", "")
        boundary = os.urandom(16).hex()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: image/tiff\r\n\r\n'
        )
        body = b"".join([head.encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()])
        content_type = f"multipart/form-data; boundary={boundary}"
        self.conn.request("POST", "/api/tag/file", body, {"Content-Type": content_type})
        r = self.conn.getresponse()
        return r.status, r.read().decode(errors="replace"), r.getheader("server-timing") or ""

    def post_path(self, relative: str) -> tuple[int, str, str]:
        """(status, body, Server-Timing header) of ``POST /api/tag/path?path=relative``."""
        import urllib.parse

        target = "/api/tag/path?" + urllib.parse.urlencode({"path": relative})
        if self.kind == "httpx":
            r = self.http.post(target)
            return r.status_code, r.text, r.headers.get("server-timing", "")
        self.conn.request("POST", target, b"")
        r = self.conn.getresponse()
        return r.status, r.read().decode(errors="replace"), r.getheader("server-timing") or ""

    def __enter__(self) -> FileClient:
        return self

    def __exit__(self, *exc) -> None:
        if self.kind == "httpx":
            self.http.close()
        else:
            self.conn.close()


def serve_round(
    files: list[Path],
    beam,
    args,
    tmp: Path,
    k: int,
    steps: dict[str, list[float]],
    dask: str | None = None,
    src: str | None = None,
    workers: int | None = None,
) -> tuple[float, float, list[int], Counter]:
    """(seconds, CPU seconds) for ``args.clients`` clients to have every file tagged, the
    network batch sizes seen and (``--per-thread``) the service's CPU seconds by thread.
    ``steps`` gets each request's milliseconds by step (``--timeline``); ``dask``: the
    service tags on that Dask cluster; ``src``: the package from that folder; ``workers``:
    its ``--workers`` (None: the service's default)."""
    import httpx

    name = f"state{k}{'-dask' if dask else ''}{'-baseline' if src else ''}"
    served = tmp / f"served-{name}" if args.request == "path" else None
    if served is not None:
        served.mkdir()
    proc, url = start_service(tmp / name, beam, args, dask, src, workers, served)
    if served is not None:  # in a subfolder, which the service's own scan of its folder skips
        (served / "frames").mkdir()
        for path in files:
            os.link(path, served / "frames" / path.name)
    before = thread_cpu(proc.pid) if args.per_thread else {}
    sched = thread_sched(proc.pid) if args.per_thread else {}
    before_children = children_cpu(proc.pid)
    kernel = kernel_threads_cpu() if args.per_thread else 0.0
    cpu = cpu_seconds()  # the clients' and the service's (a child of this process)
    share = math.ceil(len(files) / args.clients)
    errors: list[str] = []
    deadline = time.monotonic() + args.round_timeout

    def client(part: list[Path]) -> None:
        relative = "frames" if served is not None else None
        with FileClient(url, args.round_timeout, args.client, relative) as http:
            for path in part[:share]:
                if time.monotonic() > deadline:
                    errors.append("round timed out")
                    return
                sent = time.perf_counter()
                status, text, header = http.post(path)
                if status != 200:
                    errors.append(f"{path.name}: {status} {text[:200]}")
                elif args.timeline:
                    timing = server_timing(header)
                    timing["request"] = 1e3 * (time.perf_counter() - sent)
                    timing["outside"] = timing["request"] - timing.get("total", 0.0)
                    for step, ms in timing.items():
                        steps.setdefault(step, []).append(ms)

    try:
        threads = [
            threading.Thread(target=client, args=(files[i :: args.clients],))
            for i in range(args.clients)
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
        batches = httpx.get(url + "/api/health").json()["batches"]
        total = httpx.get(url + "/api/frames", params={"limit": 1}).json()["total"]
        per_thread: Counter = Counter()
        if args.per_thread:
            names = thread_names(proc.pid)
            sched_now = thread_sched(proc.pid)
            per_thread["worker-processes"] = children_cpu(proc.pid) - before_children
            per_thread["kernel-threads"] = kernel_threads_cpu() - kernel
            for tid, (seconds_now, system_now) in thread_cpu(proc.pid).items():
                name = "main" if names.get(tid) == "MainThread" else names.get(tid, "other")
                was, system_was = before.get(tid, (0.0, 0.0))
                per_thread[name] += seconds_now - was
                per_thread[f"{name} system"] += system_now - system_was
                if tid in sched_now:  # shares of the round, summed over the name's threads
                    (on, wait), (on0, wait0) = sched_now[tid], sched.get(tid, (0.0, 0.0))
                    per_thread[f"{name} on-cpu"] += (on - on0) / seconds
                    per_thread[f"{name} wait-cpu"] += (wait - wait0) / seconds
                    per_thread[f"{name} count"] += 1
    finally:
        proc.terminate()
        proc.wait(30)
    if errors or total != len(files):
        raise RuntimeError(f"serve round: {total} of {len(files)} tagged; {errors[:3]}")
    return seconds, cpu, batches, per_thread


def print_threads(kind: str, rounds: list[Counter], files: int) -> None:
    """The median CPU ms a frame of each thread of a service (``kind``) over ``rounds``, the
    kernel's part of it, and each thread's shares of the round."""
    names = sorted({name for threads in rounds for name in threads if " " not in name})
    median = lambda key: statistics.median(t[key] for t in rounds)  # noqa: E731
    medians = {n: 1e3 * median(n) / files for n in names}
    system = {n: 1e3 * median(f"{n} system") / files for n in names}
    print(
        f"{kind}: service CPU ms/frame by thread (of which in the kernel):",
        ", ".join(
            f"{n} {v:.1f}" + (f" ({system[n]:.1f})" if "-" not in n else "")
            for n, v in medians.items()
        ),
    )
    shares = []
    for n in names:
        count = median(f"{n} count")
        if count and medians[n] >= 0.1:  # threads that did some work
            on, wait = (100 * median(f"{n} {k}") / count for k in ("on-cpu", "wait-cpu"))
            shares.append(f"{n} {on:.0f} / {wait:.0f} / {100 - on - wait:.0f}")
    print(
        f"{kind}: share of the round of each service thread (%), on a CPU / waiting for one / "
        "blocked:",
        ", ".join(shares),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="predict's workers (and serve --dask's); default: scattertag predict's own, one "
        "per usable core; 0 = one process",
    )
    parser.add_argument(
        "--serve-workers", type=int, help="serve --workers (default: the service's default)"
    )
    parser.add_argument(
        "--baseline-workers", type=int, help="--workers of the --baseline service (default: its)"
    )
    parser.add_argument("--threads", type=int, default=2, help="serve --threads (workers = 0)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--round-timeout", type=float, default=600.0)
    parser.add_argument(
        "--client",
        choices=["stdlib", "httpx"],
        default="stdlib",
        help="the clients' HTTP library (stdlib: http.client, a hand-built form; the same "
        "requests, less CPU on the shared cores)",
    )
    parser.add_argument(
        "--request",
        choices=["file", "path"],
        default="file",
        help="file: each client uploads the file (POST /api/tag/file); path: the service "
        "serves the files' folder (--folder) and each client names a file in it "
        "(POST /api/tag/path), as a pipeline on the beamline's file system would",
    )
    parser.add_argument("--model", help="model folder (default: the shipped tagger)")
    parser.add_argument(
        "--per-thread", action="store_true", help="the service's CPU by thread (needs py-spy)"
    )
    parser.add_argument(
        "--timeline", action="store_true", help="median ms of each step of a request"
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="also time 'serve --dask ADDRESS' ('local': a LocalCluster of --workers "
        "processes, 0 = one per core) each round",
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also time a service run from another checkout's src folder each round "
        "(before / after a change, side by side)",
    )
    args = parser.parse_args()

    import scattertag
    from scattertag.prediction.pipeline import Predictor

    beam = (BEAM_FRACTION[0] * args.size, BEAM_FRACTION[1] * args.size)
    predictor = Predictor(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = write_files(tmp, args.size, args.files)
        print(
            f"{args.files} TIFFs of {args.size}x{args.size}, {args.clients} clients, "
            f"requests by {args.request}, "
            f"predict workers={args.workers}, serve workers={args.serve_workers} (None: its "
            f"default), threads={args.threads}, median of {args.repeats}, "
            f"{os.cpu_count()} CPUs"
        )
        print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
        kinds = ["predict", "serve"] + (["serve-dask"] if args.dask else [])
        kinds += ["baseline"] if args.baseline else []
        wall: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        batches: list[int] = []
        per_thread: dict[str, list[Counter]] = {k: [] for k in kinds}
        steps: dict[str, list[float]] = {}
        for k in range(args.repeats):
            start, cpu_start = time.perf_counter(), cpu_seconds()
            table = scattertag.predict(
                files, beam_center=beam, model=predictor, workers=args.workers,
                batch_size=args.batch_size,
            )  # fmt: skip
            wall["predict"].append(time.perf_counter() - start)
            cpu["predict"].append(cpu_seconds() - cpu_start)
            assert not table.failed, table.failed[:3]
            seconds, cpu_serve, seen, threads = serve_round(
                files, beam, args, tmp, k, steps, workers=args.serve_workers
            )
            per_thread["serve"].append(threads)
            wall["serve"].append(seconds)
            cpu["serve"].append(cpu_serve)
            batches += seen
            if args.dask:  # its network batches are its tasks' frames: not counted above
                seconds, cpu_serve, _, _ = serve_round(
                    files, beam, args, tmp, k, {}, args.dask, workers=args.workers
                )
                wall["serve-dask"].append(seconds)
                cpu["serve-dask"].append(cpu_serve)
            if args.baseline:
                seconds, cpu_serve, _, threads = serve_round(
                    files, beam, args, tmp, k, {}, src=args.baseline, workers=args.baseline_workers
                )
                per_thread["baseline"].append(threads)
                wall["baseline"].append(seconds)
                cpu["baseline"].append(cpu_serve)
            print(
                f"round {k + 1}: "
                + ", ".join(f"{n} {args.files / wall[n][-1]:.1f}" for n in kinds)
                + f" frames/s (load average {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    rates = {k: args.files / statistics.median(v) for k, v in wall.items()}
    print(f"{'':10s} {'frames/s':>9s} {'CPU ms/frame':>13s}")
    for k, v in rates.items():
        print(f"{k:10s} {v:9.1f} {1e3 * statistics.median(cpu[k]) / args.files:13.1f}")
    print(f"serve / predict: {rates['serve'] / rates['predict']:.2f} (goal >= 0.8)")
    if args.dask:
        print(f"serve --dask {args.dask} / predict: {rates['serve-dask'] / rates['predict']:.2f}")
    if args.baseline:
        print(f"baseline / predict: {rates['baseline'] / rates['predict']:.2f}")
        print(f"serve / baseline: {rates['serve'] / rates['baseline']:.2f}")
    if args.per_thread:
        for kind, rounds in per_thread.items():
            if rounds:
                print_threads(kind, rounds, args.files)
    if steps:
        print(
            "median ms a request by step (all rounds):",
            ", ".join(f"{step} {statistics.median(ms):.1f}" for step, ms in steps.items()),
        )
    if batches:
        print(
            f"network batches in the service (last 20 of each round): "
            f"mean {statistics.mean(batches):.1f} frames, max {max(batches)}"
        )


if __name__ == "__main__":
    main()
