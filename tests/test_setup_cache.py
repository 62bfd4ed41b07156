"""The on-disk cache of geometry set-ups: same views warm or cold, atomic files, bounded folder."""

import os
import time

import numpy as np

from scattertag.features.cache import SUFFIX, SetupCache, read_arrays, write_arrays
from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry

SPEC = ViewSpec(orders=4, zeros=8, fb_size=32, cake_angles=8, cake_radii=16)


def test_warm_set_up_gives_the_same_views(tmp_path):
    cache = SetupCache(tmp_path)
    geometry = Geometry((64, 64), (5.0, 60.0))  # corner beam: the fit is factorised at set-up
    mask = np.ones((64, 64), bool)
    mask[:, 30:33] = False
    counts = np.random.default_rng(0).poisson(100, (64, 64)).astype(np.uint32)
    cold = ViewMaker(SPEC, geometry, mask, cache)
    warm = ViewMaker(SPEC, geometry, mask, cache)  # waits for the cold one's background write
    assert (cache.hits, cache.misses) == (1, 1) and len(list(tmp_path.glob(f"*{SUFFIX}"))) == 1
    assert warm.fb.cached_factors == 1
    assert warm._unfamiliarity is not None  # the score's set-up came from the cache too
    assert warm._static_weights is not None  # and the weights of the static mask's validity
    for a, b in zip(cold.with_unfamiliarity(counts), warm.with_unfamiliarity(counts)):
        assert np.array_equal(a, b)
    # another mask or geometry is another entry
    ViewMaker(SPEC, geometry, None, cache)
    ViewMaker(SPEC, Geometry((64, 64), (6.0, 60.0)), mask, cache)
    cache.flush()
    assert cache.misses == 3 and len(list(tmp_path.glob(f"*{SUFFIX}"))) == 3


def test_background_writes_are_bounded_waited_for_and_per_process(tmp_path, monkeypatch):
    """store(wait=False) returns before the file is written; a read of that key waits for
    it; at most PENDING writes are held; a pickled or forked cache writes with its own
    thread, and a process waits for its writes before it exits."""
    import multiprocessing
    import pickle
    import threading

    from scattertag.features import cache as module

    cache = SetupCache(tmp_path)
    gate, started, real = threading.Event(), [], module.SetupCache._write

    def slow(self, key, arrays):
        started.append(key)
        gate.wait(10)
        real(self, key, arrays)

    monkeypatch.setattr(module.SetupCache, "_write", slow)
    for i in range(module.PENDING):
        cache.store(f"k{i}", {"x": np.full(10, i)}, wait=False)  # returns: nothing written yet
    assert not list(tmp_path.glob(f"*{SUFFIX}"))
    blocked = threading.Thread(target=cache.store, args=("k9", {"x": np.zeros(1)}, False))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # a third waits for a free slot
    gate.set()
    blocked.join(10)
    assert cache.load("k0")["x"][0] == 0 and cache.load("k9") is not None
    cache.flush()
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == module.PENDING + 1
    monkeypatch.setattr(module.SetupCache, "_write", real)
    again = pickle.loads(pickle.dumps(cache))  # e.g. sent to a spawned worker
    again.store("p", {"x": np.ones(3)}, wait=False)
    assert again.load("p")["x"].sum() == 3
    context = multiprocessing.get_context("fork")
    child = context.Process(target=cache.store, args=("f", {"x": np.ones(2)}, False))
    child.start()  # forked with this process's writer state: writes with a thread of its own
    child.join(30)
    assert child.exitcode == 0 and cache.load("f")["x"].sum() == 2


def test_unreadable_entry_is_a_miss_and_folder_stays_bounded(tmp_path):
    cache = SetupCache(tmp_path, max_bytes=2.5e4)
    key = cache.key("a")
    cache.path(key).write_bytes(b"half a file")
    assert cache.load(key) is None
    killed, writing = tmp_path / ".a.1.tmp", tmp_path / ".b.2.tmp"  # a killed and a live writer
    killed.write_bytes(b"x")
    writing.write_bytes(b"y")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    for i in range(6):
        cache.store(cache.key(i), {"x": np.full(1000, i, np.float64)})  # 8 kB each
    assert cache.nbytes <= 2.5e4
    assert cache.load(cache.key(5))["x"][0] == 5  # the newest survive
    assert cache.load(cache.key(0)) is None
    # the stores left no temporary file; of the others only the stale one is cleared
    assert [p.name for p in tmp_path.glob("*.tmp")] == [writing.name]
    path = cache.path(cache.key(5))
    path.write_bytes(path.read_bytes()[:-100])  # cut short: the array runs past the end
    assert cache.load(cache.key(5)) is None


def test_entries_come_back_mapped_read_only_in_their_layout(tmp_path):
    arrays = {
        "factor": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "order": np.arange(7, dtype=np.int32),
        "flags": np.array([True, False]),
        "none": np.zeros((0, 3), np.uint8),
        "reg": np.array(0.5),
    }
    with open(tmp_path / "x.setup", "wb") as f:
        write_arrays(f, arrays)
    back = read_arrays(tmp_path / "x.setup")
    for name, a in arrays.items():
        assert back[name].dtype == a.dtype and np.array_equal(back[name], a)
        assert not back[name].flags.writeable
    assert back["factor"].flags.f_contiguous  # LAPACK reads the factor without a copy


def test_foreign_entry_sets_up_anew(tmp_path):
    """An entry whose arrays do not fit this version (a factor key that is not text) is
    ignored: the views are those of a cold set-up, not an error on every frame."""
    cache = SetupCache(tmp_path)
    geometry = Geometry((64, 64), (5.0, 60.0))
    counts = np.random.default_rng(1).poisson(100, (64, 64)).astype(np.uint32)
    cold = ViewMaker(SPEC, geometry, None, cache)
    cache.flush()
    (path,) = tmp_path.glob(f"*{SUFFIX}")
    arrays = {name: np.array(a) for name, a in read_arrays(path).items()}
    key = next(name for name in arrays if name.endswith(".key"))
    arrays[key] = np.array([0xC9, 0xFF], np.uint8)  # not UTF-8
    with open(path, "wb") as f:
        write_arrays(f, arrays)
    again = ViewMaker(SPEC, geometry, None, cache)
    for a, b in zip(cold(counts), again(counts)):
        assert np.array_equal(a, b)


def test_beam_centre_verdict_is_kept_per_frame_centre_and_file_version(tmp_path, monkeypatch):
    from scattertag.geometry import GeometryOptions
    from scattertag.prediction import beam

    calls = []

    def check(counts, valid, geometry, source):
        calls.append(geometry.beam_center)
        return f"checked {len(calls)}: ü"  # any text, kept as written

    monkeypatch.setattr(beam, "_check", check)
    cache = SetupCache(tmp_path / "cache")
    path = tmp_path / "frame.tif"
    path.write_bytes(b"x" * 100)
    counts = np.random.default_rng(0).poisson(5, (32, 40)).astype(np.uint32)

    def resolve(centre, frame=(str(path), 0), verdicts=cache):
        options = GeometryOptions.from_user(beam_center=centre)
        valid = lambda: np.ones(counts.shape, bool)  # noqa: E731
        return beam.BeamCentres(verdicts=verdicts).resolve(
            options, counts, None, valid, str(path), frame
        )

    assert resolve((3.0, 4.0)).warning == "checked 1: ü"
    assert resolve((3.0, 4.0)).warning == "checked 1: ü"  # another process: read back
    assert resolve((3.0, 5.0)).warning == "checked 2: ü"  # another centre
    assert resolve((3.0, 4.0), frame=(str(path), 1)).warning == "checked 3: ü"  # frame
    path.write_bytes(b"y" * 101)  # the file changed
    assert resolve((3.0, 4.0)).warning == "checked 4: ü"
    assert resolve((3.0, 4.0), frame=None).warning == "checked 5: ü"  # an array: not kept
    assert resolve((3.0, 4.0), verdicts=None).warning == "checked 6: ü"  # no cache
    assert resolve((3.0, 4.0)).warning == "checked 4: ü"
    assert len(calls) == 6
