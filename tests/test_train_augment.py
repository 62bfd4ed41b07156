"""Augmentation: frame symmetries move images and Fourier-Bessel phases consistently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import angular_moments
from scattertag.augment import augment, dihedral, group_size
from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry
from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_VOCABULARY


def as_channels(moments: np.ndarray) -> torch.Tensor:
    """complex (N+1, K) -> (1, 3, N+1, K): (m, m cos phase, m sin phase), m = log1p|a|."""
    m = np.log1p(np.abs(moments))
    return torch.from_numpy(
        np.stack([m, m * np.cos(np.angle(moments)), m * np.sin(np.angle(moments))])[None]
    ).float()


@pytest.mark.parametrize("element", range(8))
def test_coefficients_follow_the_image(element):
    """Moments of the transformed frame == transformed moments, for every element of D4."""
    rng = np.random.default_rng(element)
    frame = rng.random((32, 32))  # an arbitrary real image: no symmetry to hide a wrong sign
    image = torch.from_numpy(frame[None, None]).float()
    moments = angular_moments(frame, orders=7, bins=5)
    moved_image, moved_coeff = dihedral(image, as_channels(moments), element)
    expected = as_channels(angular_moments(moved_image[0, 0].double().numpy(), orders=7, bins=5))
    torch.testing.assert_close(moved_coeff, expected, rtol=1e-4, atol=1e-4)


def moved_frame(counts, mask, geometry, element):
    """The frame, mask and geometry after D4 element ``element`` (the beam centre moves along)."""
    rows, cols = counts.shape
    cx, cy = geometry.beam_center
    if element & 4:
        counts, mask, (cx, cy) = counts.T, mask.T, (cy, cx)
        rows, cols = cols, rows
    if element & 2:
        counts, mask, cy = counts[::-1], mask[::-1], rows - 1 - cy
    if element & 1:
        counts, mask, cx = counts[:, ::-1], mask[:, ::-1], cols - 1 - cx
    return (
        np.ascontiguousarray(counts),
        np.ascontiguousarray(mask),
        Geometry(counts.shape, (cx, cy)),
    )


@pytest.mark.parametrize(
    "space, center", [("detector", (13.0, 45.0)), ("cake", (13.3, 45.6)), ("qcake", (13.3, 45.6))]
)
@pytest.mark.parametrize("element", range(1, 8))
def test_real_views_of_the_moved_frame(element, space, center):
    """The real ViewMaker on the moved frame (beam off-centre, masked gap) gives the moved views.

    (A cake's beam centre is off the pixel grid so that no pixel sits on an azimuth bin edge.)
    """
    rng = np.random.default_rng(7)
    geometry = Geometry((64, 64), center)
    r, chi = geometry.r_map, geometry.chi_map
    counts = rng.poisson(5 + 400 * np.exp(-0.5 * ((r - 30) / 3) ** 2) * (1 + np.cos(2 * chi - 0.4)))
    mask = np.ones((64, 64), bool)
    mask[:, 40:43] = False  # a module gap
    spec = ViewSpec(
        input_size=32,
        orders=5,
        zeros=6,
        fb_size=64,
        image_space=space,
        q_min=0.002,  # the q window of this small frame at the reference geometry
        q_max=0.04,
        cake_angles=16,
        cake_radii=24,
    )
    image, coeff = (
        torch.from_numpy(v)[None] for v in ViewMaker(spec, geometry, mask)(counts, mask)
    )
    moved = moved_frame(counts, mask, geometry, element)
    expected = [
        torch.from_numpy(v)[None] for v in ViewMaker(spec, moved[2], moved[1])(moved[0], moved[1])
    ]
    got = dihedral(image, coeff, element, cake=space != "detector")
    assert not torch.equal(got[0], image)  # the test frame has no symmetry that hides a wrong move
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-4)  # wrong signs give ~0.5


def test_eight_distinct_elements_and_gisaxs_subgroup():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    coeff = torch.zeros(1, 2, 3, 2)
    frames = {tuple(dihedral(image, coeff, e)[0].flatten().tolist()) for e in range(8)}
    assert len(frames) == 8
    assert group_size(list(DEFAULT_VOCABULARY)) == 8
    assert (
        group_size(list(GISAXS_VOCABULARY)) == 2
    )  # gravity: only the left-right mirror keeps the horizon


def test_random_batch_augmentation_is_per_sample_and_reproducible():
    image, coeff = torch.rand(64, 1, 8, 8), torch.randn(64, 2, 3, 4)
    first = augment(image, coeff, 8, torch.Generator().manual_seed(1))
    again = augment(image, coeff, 8, torch.Generator().manual_seed(1))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    changed = (first[0] != image).flatten(1).any(1)
    assert 0 < changed.sum() < 64  # some samples kept (identity), some moved
    mirror_only = augment(image, coeff, 2, torch.Generator().manual_seed(2))[0]
    assert all(torch.equal(m, x) or torch.equal(m, x.flip(-1)) for m, x in zip(mirror_only, image))
