"""scattertag: tag X-ray scattering images with networks trained on synthetic physics.

The pipeline, one subpackage a step: ``simulate`` -> ``features`` -> ``data`` ->
``models`` / ``train`` -> ``evaluate`` -> ``predict``; ``cli`` drives them.
"""

from scattertag.geometry import Geometry
from scattertag.tags import DEFAULT_VOCABULARY, Vocabulary

__version__ = "0.1.0"
__all__ = ["Geometry", "Vocabulary", "DEFAULT_VOCABULARY", "predict", "__version__"]

# Binds the name to the function (not the subpackage); the subpackage stays importable.
from scattertag.predict import predict  # noqa: E402
