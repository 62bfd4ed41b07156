"""Tag real detector files: the prediction pipeline, tables, watching a folder."""


def predict(*args, **kwargs):
    """Tag detector files and return a table; see :func:`scattertag.prediction.api.predict`."""
    from scattertag.prediction.api import predict as _predict

    return _predict(*args, **kwargs)
