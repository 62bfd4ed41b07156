"""Figures of the pipeline's objects: Fourier-Bessel views of frames, a tagged frame.

Drawing helpers shared by all figures (log colour frames, montages, saving without a
GUI backend) are in :mod:`scattertag.plotting`.
"""
