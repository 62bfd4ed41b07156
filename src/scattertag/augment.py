"""Label-preserving, physically valid augmentation: the symmetries of the square frame.

The network image is the whole (square) detector frame; its beam centre is generally
*not* at the middle, so a rotation about the beam centre would need pixels the detector
never saw. What is exact is to flip or transpose the whole frame: the result is the
frame of the same experiment with the detector mounted mirrored or turned by 90 degrees,
whose beam centre is the mirrored point. These 8 operations (the dihedral group D4)
change no tag: rings, halos, lattices, anisotropy, beamstop kinds and intensities are
unchanged; a horizontal slit streak becomes a vertical one, also a real artefact.

In the cake image space (``scattertag.features.views.Cake``: rows are azimuth bins
theta_a = -pi + (a + 1/2) 2pi/A, columns log radius) the same maps act on the rows only:
theta -> s - theta sends bin a to bin (s' - 1 - a) mod A with s' = s A / (2 pi), that is,
reverse the rows, then roll them by s' (A/2 for a column flip, 0 for a row flip, A/4 for
the transpose; A is a multiple of 4).

The Fourier-Bessel coefficients a_nk about the (moved) beam centre change only in phase,
because every operation maps the polar angle theta about the beam centre as follows
(f real, a_nk = <f, psi_nk>, psi_nk ~ exp(i n theta)):

    flip columns (x -> -x):   theta -> pi - theta    a_nk -> (-1)^n conj(a_nk)
    flip rows    (y -> -y):   theta -> -theta        a_nk -> conj(a_nk)
    transpose    (x <-> y):   theta -> pi/2 - theta  a_nk -> (-i)^n conj(a_nk)

The coefficient matrix (``scattertag.features.views``) stores, per coefficient, a
phase-free magnitude channel m and then (m cos arg a, m sin arg a): the last two
channels are (Re a, Im a) times a positive factor, so conjugation and multiplication by
powers of i (which only negate and swap Re and Im) act on them directly, and the
channels before them stay as they are.

Not used, on purpose: rotations by other angles (need unseen pixels); intensity scaling
and extra Poisson noise, because "Strong scattering", "Weak scattering" and "High
background" are defined on absolute counts (scaling can flip them) and the stored
coefficients cannot be recomputed from the downsampled image. Grazing-incidence (GISAXS)
vocabularies keep gravity's direction (horizon, Yoneda band), so only the column flip is
used there.
"""

from __future__ import annotations

import torch

from scattertag.tags import GISAXS_TAGS


def _complex_pair(coeff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (Re, Im) channels of a (B, C, N+1, K) coefficient batch: its last two channels."""
    return coeff[:, -2], coeff[:, -1]


def _with_pair(coeff: torch.Tensor, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``coeff`` with its (Re, Im) channels replaced; phase-free channels kept."""
    return torch.cat([coeff[:, :-2], re[:, None], im[:, None]], dim=1)


def _cake_mirror(image: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    """theta -> quarter_turns pi/2 - theta on a cake (B, C, A, R): rows reversed, then rolled."""
    return image.flip(-2).roll(quarter_turns * image.shape[-2] // 4, dims=-2)


def flip_columns(
    image: torch.Tensor, coeff: torch.Tensor, cake: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror x -> W-1-x: columns reversed, a_nk -> (-1)^n conj(a_nk); (B,C,S,S), (B,C,N+1,K)."""
    re, im = _complex_pair(coeff)
    sign = torch.where(torch.arange(coeff.shape[2]) % 2 == 1, -1.0, 1.0)[
        :, None
    ]  # (N+1, 1): (-1)^n
    image = _cake_mirror(image, 2) if cake else image.flip(-1)
    return image, _with_pair(coeff, sign * re, -sign * im)


def flip_rows(
    image: torch.Tensor, coeff: torch.Tensor, cake: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror y -> H-1-y: image rows reversed; a_nk -> conj(a_nk)."""
    re, im = _complex_pair(coeff)
    image = _cake_mirror(image, 0) if cake else image.flip(-2)
    return image, _with_pair(coeff, re, -im)


def transpose(
    image: torch.Tensor, coeff: torch.Tensor, cake: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap x and y: image transposed; a_nk -> (-i)^n conj(a_nk)."""
    re, im = _complex_pair(coeff)
    im = -im  # conj
    n = torch.arange(coeff.shape[2]) % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0])[n][:, None]  # (-i)^n = cos + i sin
    sin = torch.tensor([0.0, -1.0, 0.0, 1.0])[n][:, None]
    image = _cake_mirror(image, 1) if cake else image.transpose(-1, -2)
    return image, _with_pair(coeff, cos * re - sin * im, sin * re + cos * im)


def dihedral(
    image: torch.Tensor, coeff: torch.Tensor, element: int, cake: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Element 0..7 of D4: transpose if bit 2, then flip rows if bit 1, then columns if bit 0."""
    if element & 4:
        image, coeff = transpose(image, coeff, cake)
    if element & 2:
        image, coeff = flip_rows(image, coeff, cake)
    if element & 1:
        image, coeff = flip_columns(image, coeff, cake)
    return image, coeff


def group_size(vocabulary: list[str]) -> int:
    """How many D4 elements preserve the tags: 8, or 2 (identity, column flip) for GISAXS tags."""
    gisaxs = {t.lower() for t in GISAXS_TAGS}
    return 2 if any(t.lower() in gisaxs for t in vocabulary) else 8


def augment(
    image: torch.Tensor,
    coeff: torch.Tensor,
    size: int,
    generator: torch.Generator,
    cake: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply an independent random element of the first ``size`` D4 elements to each sample.

    ``cake``: the images are cakes (azimuth x log radius), not detector frames.
    """
    elements = torch.randint(size, (image.shape[0],), generator=generator)
    image, coeff = image.clone(), coeff.clone()
    for element in elements.unique().tolist():
        pick = elements == element
        image[pick], coeff[pick] = dihedral(image[pick], coeff[pick], element, cake)
    return image, coeff
