"""Adapting a tagger to a beamline: labelled real frames, calibration, fine-tuning."""
