"""Physics-based simulator of X-ray scattering detector images with multi-label tags.

An *experiment* fixes the detector, geometry, mask and beamstop; each image then draws a
sample (diffuse low-/high-q scattering, rings, halos, lattices, backgrounds, defects...)
and is tagged by what is visible on the detector::

    recipe = Recipe(size=1000)
    exp = draw_experiment(recipe, seed, experiment_index)
    s = simulate_image(exp, image_index)   # s.counts, s.mask, s.tags, s.keys, s.params
"""

from scattertag.simulate.experiment import Experiment, draw_experiment
from scattertag.simulate.image import Sample, simulate_image
from scattertag.simulate.recipe import Recipe

__all__ = ["Experiment", "Recipe", "Sample", "draw_experiment", "simulate_image"]
