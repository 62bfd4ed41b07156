"""Cores from affinity and cgroup quota; thread caps that come back after a library call."""

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
