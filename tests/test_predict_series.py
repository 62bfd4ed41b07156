"""predict settles the beam centres of a folder's set-up together
(scattertag.prediction.series): a calibrant's pose refits another frame's short arcs, a
frame not found alone adopts the centre its set-up agrees on, and both say so."""

import math

import numpy as np
import pytest
from fabio.tifimage import TifImage

import scattertag
from scattertag.prediction.grouping import tag_by_geometry
from scattertag.prediction.sources import Item
from test_beam_pose import BEAM, TOLERANCE, TWO_THETA, rings


def halo(seed: int) -> np.ndarray:
    """A broad halo alone on the tilted strip: no centre of its own."""
    img = 20.0 + 400.0 * np.exp(-0.5 * ((TWO_THETA - 0.3) / 0.08) ** 2)
    return np.random.default_rng(seed).poisson(img).astype(np.int32)


def write(path, counts) -> None:
    TifImage(data=np.asarray(counts, np.int32)).write(str(path))


def test_a_folder_of_one_setup_is_tagged_with_its_shared_centre(tmp_path, predictor):
    """Calibrant, short arcs and a halo of one tilted set-up: all three tagged; the short
    arcs refitted with the calibrant's pose and the halo given the series' centre, both
    within the goal's tolerance, their source ``series`` and the warning naming the frames."""
    write(tmp_path / "a_calibrant.tif", rings(np.linspace(0.12, 0.55, 9), 0.003, 0))
    write(tmp_path / "b_short.tif", rings((0.25, 0.4), 0.006, 1))
    write(tmp_path / "c_halo.tif", halo(5))
    table = scattertag.predict([tmp_path], model=predictor)
    rows = {r["path"].split("/")[-1]: r for r in table}
    assert all(r["error"] == "" for r in table)
    assert [rows[n]["geometry_source"] for n in sorted(rows)] == ["estimated", "series", "series"]
    assert "cones of the detector pose" in rows["b_short.tif"]["warning"]
    assert "a_calibrant.tif" in rows["b_short.tif"]["warning"]
    assert "a_calibrant.tif, b_short.tif" in rows["c_halo.tif"]["warning"]
    assert rows["a_calibrant.tif"]["warning"] == ""
    for r in table:
        assert math.hypot(r["beam_x"] - BEAM[0], r["beam_y"] - BEAM[1]) < TOLERANCE


def test_frames_of_other_shapes_or_folders_are_not_pooled(tmp_path, predictor):
    """The halo in another folder, or cut to another shape, is a set-up of its own: it
    stays not found (an error row, as without pooling)."""
    write(tmp_path / "a_calibrant.tif", rings(np.linspace(0.12, 0.55, 9), 0.003, 0))
    write(tmp_path / "b_short.tif", rings((0.25, 0.4), 0.006, 1))
    (tmp_path / "other").mkdir()
    write(tmp_path / "other" / "c_halo.tif", halo(5))
    write(tmp_path / "d_halo_cut.tif", halo(6)[:, :480])
    table = scattertag.predict([tmp_path, tmp_path / "other"], model=predictor)
    rows = {r["path"].split("/")[-1]: r for r in table}
    for name in ("c_halo.tif", "d_halo_cut.tif"):
        assert "no beam centre" in rows[name]["error"] and rows[name]["geometry_source"] == ""
    assert rows["b_short.tif"]["geometry_source"] == "series"


def test_revised_items_are_tagged_again_in_place():
    """tag_by_geometry: the items ``revise`` returns are tagged again and their rows replace
    the first ones, in input order."""
    items = [Item(f"f{i}", f"/x/f{i}") for i in range(4)]
    calls: list[list[str]] = []

    def tag(part):
        calls.append([i.source for i in part])
        return iter([{"path": i.source, "frame": 0, "again": i.error} for i in part])

    def revise(part, owned):
        assert [rows[0]["path"] for rows in owned] == ["f0", "f1", "f2", "f3"]
        return {1: Item("f1", "/x/f1", error="again"), 3: Item("f3", "/x/f3", error="again")}

    rows = list(tag_by_geometry(items, tag, count=lambda _: 1, revise=revise))
    assert [(r["path"], r["again"]) for r in rows] == [
        ("f0", ""),
        ("f1", "again"),
        ("f2", ""),
        ("f3", "again"),
    ]
    assert calls == [["f0", "f1", "f2", "f3"], ["f1", "f3"]]


def test_windows_grow_from_the_first_so_a_setup_settles_early():
    """tag_by_geometry: windows of 16, 32, 64 ... frames up to ``window``, each revised
    (settled), rows in input order."""
    items = [Item(f"f{i}", f"/x/f{i}") for i in range(300)]
    sizes: list[int] = []
    revised: list[int] = []

    def tag(part):
        sizes.append(len(part))
        return iter([{"path": i.source, "frame": 0} for i in part])

    def revise(part, owned):
        revised.append(len(part))
        return {}

    rows = list(tag_by_geometry(iter(items), tag, count=lambda _: 1, revise=revise, window=100))
    assert [r["path"] for r in rows] == [i.source for i in items]
    assert sizes == revised == [16, 32, 64, 100, 88]


def test_dask_settles_series_as_a_local_run(tmp_path, model_dir):
    """On a Dask LocalCluster the same frames are settled the same way: the same CSV."""
    from distributed import LocalCluster

    write(tmp_path / "a_calibrant.tif", rings(np.linspace(0.12, 0.55, 9), 0.003, 0))
    write(tmp_path / "b_short.tif", rings((0.25, 0.4), 0.006, 1))
    write(tmp_path / "c_halo.tif", halo(5))
    local = scattertag.predict([tmp_path], model=model_dir, out=tmp_path / "local.csv")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = scattertag.predict(
            [tmp_path], model=model_dir, dask=cluster.scheduler_address, out=tmp_path / "dask.csv"
        )
    assert [r["geometry_source"] for r in remote] == ["estimated", "series", "series"]
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert len(local) == 3


def test_a_settled_centre_is_offered_to_later_windows():
    """Once two found frames of a folder agree, later items of that folder (and options)
    carry their centre to be taken at a glance; other folders' items carry none; a later
    window whose found centres disagree withdraws it."""
    from scattertag.beam.center import BeamCenterEstimate
    from scattertag.geometry import GeometryOptions
    from scattertag.prediction.beam import Estimated
    from scattertag.prediction.series import SeriesPooling

    options = GeometryOptions()
    pooling = SeriesPooling()

    def window(centres):
        part = [Item(f"/x/f{i}.tif", f"/x/f{i}.tif", options=options) for i in range(len(centres))]
        for item, (x, y) in zip(part, centres):
            pooling.keep(
                item.source, 0, Estimated(BeamCenterEstimate(x, y, 0.7, "rings", True), (90, 120))
            )
        assert pooling.revise(part, [[{"path": i.source, "frame": 0}] for i in part]) == {}

    window([(20.0, 70.0), (21.0, 70.0)])
    later = [
        Item("/x/g.tif", "/x/g.tif", options=options),
        Item("/y/g.tif", "/y/g.tif", options=options),
    ]
    offered = list(pooling.offer(later))
    centre = offered[0].centre
    assert centre is not None and centre.glance and centre.shape == (90, 120)
    assert (centre.x, centre.y, centre.confidence) == (20.5, 70.0, 0.7)
    assert offered[1].centre is None
    window([(20.0, 70.0), (60.0, 30.0)])  # the folder now holds another set-up too
    assert next(pooling.offer(later[:1])).centre is None


def test_frames_taken_unseen_are_estimated_when_their_window_shows_another_setup():
    """Frames that took the offered centre unseen (showing nothing) stay with it while the
    window's found frames agree with it, or show no second centre twice; when two found
    frames agree on another centre (the folder's set-up changed; a third may stray), they
    are tagged again without it (a full estimate)."""
    from scattertag.beam.center import BeamCenterEstimate
    from scattertag.geometry import GeometryOptions
    from scattertag.prediction.beam import UNSEEN, Estimated
    from scattertag.prediction.series import SeriesPooling

    options = GeometryOptions()

    def window(found):
        pooling = SeriesPooling()
        part = [Item(f"/x/f{i}.tif", f"/x/f{i}.tif", options=options) for i in range(5)]
        kept = [BeamCenterEstimate(20.0, 70.0, 0.0, UNSEEN, True)] * 2
        kept += [BeamCenterEstimate(x, y, 0.7, "rings", True) for x, y in found]
        for item, estimate in zip(part, kept):
            pooling.keep(item.source, 0, Estimated(estimate, (90, 120)))
        return pooling.revise(part, [[{"path": i.source, "frame": 0}] for i in part])

    assert window([(20.5, 70.0), (20.0, 71.0)]) == {}
    assert window([(60.0, 30.0), (20.0, 70.5)]) == {}  # one found frame elsewhere
    assert window([(60.0, 30.0), (40.0, 50.0)]) == {}  # two that stray apart
    again = window([(60.0, 30.0), (60.5, 30.0), (5.0, 10.0)])  # twice, and a stray one
    assert sorted(again) == [0, 1] and all(item.centre is None for item in again.values())


def test_an_offered_centre_is_taken_only_at_a_glance():
    """A frame isotropic about the offered centre takes it (source series, a found estimate
    for its window); 30 px off, or for frames of another shape, it is estimated as usual."""
    from conftest import BEAM, SHAPE, frame
    from scattertag.geometry import GeometryOptions
    from scattertag.prediction.beam import BeamCentres, SeriesCentre

    counts = frame(3)
    valid = lambda: np.ones(SHAPE, bool)  # noqa: E731

    def placed(x, y, shape=SHAPE):
        offered = SeriesCentre(x, y, "note", True, shape, 0.7)
        return BeamCentres().resolve(GeometryOptions(), counts, None, valid, "g", None, offered)

    took = placed(*BEAM)
    assert took.source == "series" and took.warning == "note"
    assert took.estimated is not None and took.estimated.estimate.found
    for refused in (placed(BEAM[0] + 30, BEAM[1]), placed(*BEAM, shape=(91, 120))):
        assert refused.source == "estimated" and refused.warning == ""
        assert (
            math.hypot(
                refused.geometry.beam_center[0] - BEAM[0], refused.geometry.beam_center[1] - BEAM[1]
            )
            < 2
        )


def test_watch_settles_a_scan_by_setup(tmp_path, predictor):
    """--watch: the files of one scan are settled as predict settles a folder."""
    import threading

    from scattertag.prediction.table import read_csv
    from scattertag.prediction.watch import watch

    folder, out = tmp_path / "detector", tmp_path / "p.csv"
    folder.mkdir()
    write(folder / "a_calibrant.tif", rings(np.linspace(0.12, 0.55, 9), 0.003, 0))
    write(folder / "b_short.tif", rings((0.25, 0.4), 0.006, 1))
    write(folder / "c_halo.tif", halo(5))
    stop = threading.Event()
    kwargs = {"model": predictor, "interval": 0.05, "settle": 0.0, "patience": 0.0}
    thread = threading.Thread(target=lambda: watch(folder, out, stop=stop, **kwargs))
    thread.start()
    try:
        for _ in range(600):
            if out.exists() and len(read_csv(out)) >= 3:
                break
            threading.Event().wait(0.1)
    finally:
        stop.set()
        thread.join(60)
    rows = {r["path"].split("/")[-1]: r for r in read_csv(out)}
    assert [rows[n]["geometry_source"] for n in sorted(rows)] == ["estimated", "series", "series"]
    assert all(r["error"] == "" for r in rows.values())


def test_no_series_takes_each_centre_from_its_own_image(tmp_path, model_dir):
    """series=False (CLI --no-series): the same folder as above, each frame on its own: the
    short arcs and the halo find no centre alone (error rows, no note); the calibrant is
    tagged as with pooling."""
    from scattertag.cli import main
    from scattertag.prediction.table import read_csv

    write(tmp_path / "a_calibrant.tif", rings(np.linspace(0.12, 0.55, 9), 0.003, 0))
    write(tmp_path / "b_short.tif", rings((0.25, 0.4), 0.006, 1))
    write(tmp_path / "c_halo.tif", halo(5))
    pooled = scattertag.predict([tmp_path], model=model_dir)
    out = tmp_path / "alone.csv"
    assert (
        main(
            [
                "predict",
                str(tmp_path),
                "--model",
                str(model_dir),
                "--no-series",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 1
    )
    alone = {r["path"].split("/")[-1]: r for r in read_csv(out)}
    assert [alone[n]["geometry_source"] for n in sorted(alone)] == ["estimated", "", ""]
    for name in ("b_short.tif", "c_halo.tif"):
        assert "no beam centre" in alone[name]["error"] and alone[name]["warning"] == ""
    calibrant = alone["a_calibrant.tif"]
    assert (float(calibrant["beam_x"]), float(calibrant["beam_y"])) == pytest.approx(
        (pooled[0]["beam_x"], pooled[0]["beam_y"]), abs=1e-3
    )


@pytest.mark.parametrize(
    ("distance", "pooled"), [("0.5000", True), ("0.5002", True), ("2.0", False)]
)
def test_headers_stating_another_distance_are_another_setup(tmp_path, predictor, distance, pooled):
    """Frames of one folder and shape: the halo (EDF) joins the set-up of the calibrant (EDF)
    and the short arcs (TIFF, silent) when its header states the calibrant's distance (to 3
    significant digits: a readback that jitters is the same placement); when it states
    another, both it and the silent TIFF stay not found."""
    from fabio.edfimage import EdfImage

    def edf(name, counts, sample_distance):
        header = {"SampleDistance": sample_distance, "PSize_1": "7.5e-05", "PSize_2": "7.5e-05"}
        EdfImage(data=np.asarray(counts, np.int32), header=header).write(str(tmp_path / name))

    edf("a_calibrant.edf", rings(np.linspace(0.12, 0.55, 9), 0.003, 0), "0.5")
    write(tmp_path / "b_short.tif", rings((0.25, 0.4), 0.006, 1))  # a header that is silent
    edf("c_halo.edf", halo(5), distance)
    rows = {r["path"].split("/")[-1]: r for r in scattertag.predict([tmp_path], model=predictor)}
    assert rows["a_calibrant.edf"]["geometry_source"] == "estimated"
    for name in ("b_short.tif", "c_halo.edf"):
        if pooled:
            assert rows[name]["geometry_source"] == "series" and rows[name]["error"] == ""
        else:  # two set-ups stated: the silent TIFF cannot be placed either
            assert "no beam centre" in rows[name]["error"]


def test_silent_headers_join_only_one_stated_setup():
    """merged_setups: silent frames join the values stated when those may be one set-up;
    with two set-ups stated, each frame keeps its own (the silent ones apart)."""
    from scattertag.prediction.beam import merged_setups, same_setup

    one = [(7.5e-05, None), (None, None), (7.5e-05, 0.5)]
    assert merged_setups(one) == [(7.5e-05, 0.5)] * 3
    two = [(None, 0.5), (None, None), (None, 2.0)]
    assert merged_setups(two) == two
    assert merged_setups([(None, None)] * 2) == [(None, None)] * 2
    assert same_setup((None, 0.5), (7.5e-05, 0.5)) and not same_setup((None, 0.5), (None, 2.0))
