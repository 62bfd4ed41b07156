"""Test-time averaging over the frame's symmetries (models.symmetry)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import scattertag
from conftest import BEAM, frame
from scattertag.adapt.provenance import sidecar_path
from scattertag.augment import dihedral
from scattertag.cli import main
from scattertag.models import load_model
from scattertag.models.symmetry import SUBGROUP_SIZES, SymmetryAverage, check_symmetries
from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_VOCABULARY


def random_views(model_dir, batch=3):
    """A loaded tiny tagger and random views (image, coeff) of its input shapes."""
    from scattertag.features.views import ViewSpec

    model, card = load_model(model_dir)
    spec = ViewSpec.from_dict(card.view_spec)
    g = torch.Generator().manual_seed(0)
    image = torch.rand((batch, *spec.image_shape), generator=g)
    coeff = torch.randn((batch, *spec.coeff_shape), generator=g)
    return model, spec, image, coeff


@pytest.mark.parametrize("k", SUBGROUP_SIZES)
def test_average_is_invariant_under_its_subgroup(model_dir, k):
    """z_H(g x) == z_H(x) for every g in H: the first k elements are closed under composition."""
    model, spec, image, coeff = random_views(model_dir)
    averaged = SymmetryAverage(model, k, spec.is_cake)
    with torch.no_grad():
        base = averaged(image, coeff)
        for element in range(k):
            moved = averaged(*dihedral(image, coeff, element, spec.is_cake))
            torch.testing.assert_close(moved, base, rtol=1e-4, atol=1e-5)
        if k == 1:  # no averaging: the model itself, bit for bit
            assert torch.equal(base, model(image, coeff))
        else:  # and not the plain model: the average does change the logits of a random net
            assert not torch.allclose(base, model(image, coeff), atol=1e-4)


def test_average_is_the_mean_of_the_moved_frames(model_dir):
    model, spec, image, coeff = random_views(model_dir, batch=2)
    with torch.no_grad():
        expected = torch.stack(
            [model(*dihedral(image, coeff, e, spec.is_cake)) for e in range(4)]
        ).mean(0)
        torch.testing.assert_close(SymmetryAverage(model, 4, spec.is_cake)(image, coeff), expected)


def test_allowed_sizes():
    vocabulary = DEFAULT_VOCABULARY.to_list()
    assert [check_symmetries(k, vocabulary) for k in SUBGROUP_SIZES] == list(SUBGROUP_SIZES)
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="one of"):
            check_symmetries(bad, vocabulary)
    gisaxs = GISAXS_VOCABULARY.to_list()
    assert check_symmetries(2, gisaxs) == 2
    with pytest.raises(ValueError, match="grazing incidence"):
        check_symmetries(4, gisaxs)


def test_predict_records_symmetries(tmp_path, model_dir):
    np.save(tmp_path / "f.npy", frame())
    out = tmp_path / "p.csv"
    plain = scattertag.predict([tmp_path / "f.npy"], beam_center=BEAM, model=model_dir)
    mean = scattertag.predict(
        [tmp_path / "f.npy"], beam_center=BEAM, model=model_dir, symmetries=8, out=out
    )
    assert json.loads(sidecar_path(out).read_text())["symmetries"] == 8
    tags = DEFAULT_VOCABULARY.to_list()
    p_plain = np.array([plain[0][t] for t in tags])
    p_mean = np.array([mean[0][t] for t in tags])
    assert np.isfinite(p_mean).all() and not np.allclose(p_plain, p_mean, atol=1e-6)
    argv = ["predict", str(tmp_path / "f.npy"), "--beam-center", *map(str, BEAM)]
    argv += ["--model", str(model_dir), "--out", str(out), "--workers", "0", "--quiet"]
    assert main([*argv, "--symmetries", "2"]) == 0
    assert json.loads(sidecar_path(out).read_text())["symmetries"] == 2
    assert main([*argv, "--symmetries", "3"]) == 2


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_traced_average_takes_any_batch_size(model_dir):
    """serve traces the Predictor's network: the traced average must not fix the batch size."""
    model, spec, image, coeff = random_views(model_dir, batch=3)
    averaged = SymmetryAverage(model, 2, spec.is_cake)
    with torch.no_grad():
        network = torch.jit.trace(averaged, (image, coeff), check_trace=False)
        for batch in (1, 3):
            x = (image[:batch], coeff[:batch])
            torch.testing.assert_close(network(*x), averaged(*x))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_service_averages_and_its_traced_network_keeps_the_average(tmp_path, model_dir):
    from scattertag.serve.config import ServeConfig
    from scattertag.serve.service import Service
    from scattertag.serve.tagger import traced

    service = Service(ServeConfig(state=tmp_path, model=str(model_dir), symmetries=2))
    predictor = service.predictor
    assert predictor.provenance["symmetries"] == 2
    fast = traced(predictor)
    assert isinstance(fast.model, torch.jit.ScriptModule)  # traced, not the eager fallback
    _, _, image, coeff = random_views(model_dir, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(fast.model(image, coeff), predictor.model(image, coeff))
