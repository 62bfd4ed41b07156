"""Augmentation: frame symmetries move images and Fourier-Bessel phases consistently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scattertag.augment import augment, dihedral, group_size
from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_VOCABULARY
from test_train import angular_moments


def as_channels(moments: np.ndarray) -> torch.Tensor:
    """complex (N+1, K) -> (1, 2, N+1, K) stored layout (Re, Im), through an odd scaling (asinh)."""
    return torch.from_numpy(np.arcsinh(np.stack([moments.real, moments.imag]))[None]).float()


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


def test_eight_distinct_elements_and_gisaxs_subgroup():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    coeff = torch.zeros(1, 2, 3, 2)
    frames = {tuple(dihedral(image, coeff, e)[0].flatten().tolist()) for e in range(8)}
    assert len(frames) == 8
    assert group_size(list(DEFAULT_VOCABULARY)) == 8
    assert group_size(list(GISAXS_VOCABULARY)) == 2  # gravity: only the left-right mirror keeps the horizon


def test_random_batch_augmentation_is_per_sample_and_reproducible():
    image, coeff = torch.rand(64, 1, 8, 8), torch.randn(64, 2, 3, 4)
    first = augment(image, coeff, 8, torch.Generator().manual_seed(1))
    again = augment(image, coeff, 8, torch.Generator().manual_seed(1))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    changed = (first[0] != image).flatten(1).any(1)
    assert 0 < changed.sum() < 64  # some samples kept (identity), some moved
    mirror_only = augment(image, coeff, 2, torch.Generator().manual_seed(2))[0]
    assert all(torch.equal(m, x) or torch.equal(m, x.flip(-1)) for m, x in zip(mirror_only, image))
