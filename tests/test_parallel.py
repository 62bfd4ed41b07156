"""Cores from affinity and cgroup quota; thread caps that come back after a library call."""

import pytest
import torch

from scattertag.parallel import cgroup_cpu_limit, limited_threads, usable_cores, worker_split


def test_cgroup_quota_files(tmp_path):
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2) == 1.5
    v2.write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None
    quota, period = tmp_path / "q", tmp_path / "p"
    quota.write_text("-1\n")
    period.write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path / "none", (quota, period)) is None
    quota.write_text("300000\n")
    assert cgroup_cpu_limit(tmp_path / "none", (quota, period)) == 3.0
    assert usable_cores() >= 1


def test_worker_split_and_thread_caps():
    assert worker_split(None, cores=2) == (2, 1)
    assert worker_split(0, cores=2) == (0, 2)
    assert worker_split(None, cores=64) == (64, 1)
    before = torch.get_num_threads()
    with limited_threads(1, 1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_reuse_freed_memory_stops_page_faults_on_repeated_large_arrays():
    """In a fresh process, 20 rounds of a 2000 x 2000 frame's arrays (uint32 counts, float32
    copy, log, a block copy) fault fresh pages in every round with glibc's defaults, and
    almost none once freed memory is reused."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc malloc only")
    script = (
        "import resource, sys, numpy as np\n"
        "from scattertag.parallel import reuse_freed_memory\n"
        "ok = reuse_freed_memory() if sys.argv[1] == 'reuse' else True\n"
        "def frame():\n"
        "    a = np.ones((2000, 2000), np.uint32); b = a.astype(np.float32)\n"
        "    return np.log1p(b)[::2, ::2].copy().sum()\n"
        "frame()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20):\n"
        "    frame()\n"
        "print(ok, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )

    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[0], int(out[1])

    ok, reused = faults("reuse")
    _, fresh = faults("plain")
    assert ok == "True"
    assert fresh > 20_000  # a 16 MB array is 3906 pages: fresh pages in every round
    assert reused < fresh / 10
