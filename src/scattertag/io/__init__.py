"""Detector files in and out, for every step of the pipeline.

``readers`` (frames of TIFF, CBF, EDF, HDF5/NeXus/Eiger, NPY and everything fabio detects,
checked whole), ``headers`` (the geometry a file carries), ``masks`` (the one valid-pixel
rule, mask files, digests), ``integrity`` (truncation and corruption checks), ``failures``
(one file's exception -> its error message), ``files`` and ``atomic`` (writers that never
leave half a file: temporary name, fsync, rename).
"""
