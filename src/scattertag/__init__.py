"""scattertag: tag X-ray scattering images with networks trained on synthetic physics.

The pipeline, one subpackage a step: ``simulate`` -> ``features`` -> ``data`` ->
``models`` / ``train`` -> ``evaluate`` -> ``prediction``; ``io`` reads and writes
files for all of them and ``cli`` drives them. ``scattertag.predict(...)`` tags files or arrays.
"""

from scattertag.geometry import Geometry
from scattertag.tags import DEFAULT_VOCABULARY, Vocabulary

__version__ = "0.1.0"
__all__ = ["DEFAULT_VOCABULARY", "Geometry", "Vocabulary", "__version__", "predict"]

# Binds the name to the function (not the subpackage); the subpackage stays importable.
from scattertag.prediction import predict
