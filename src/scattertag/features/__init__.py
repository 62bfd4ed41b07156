"""Fourier-Bessel features and the shared preprocessing of the network views.

``FourierBessel`` is the transform (``fourier_bessel``); ``views.ViewSpec`` /
``views.ViewMaker`` turn detector counts into the image and coefficient views.
"""

from scattertag.features.fourier_bessel import FourierBessel

__all__ = ["FourierBessel"]
