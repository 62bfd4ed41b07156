"""Tag real detector files: readers, the prediction pipeline, watching a folder."""


def predict(*args, **kwargs):
    """Tag detector files and return a table; see :func:`scattertag.predict.api.predict`."""
    from scattertag.predict.api import predict as _predict

    return _predict(*args, **kwargs)
