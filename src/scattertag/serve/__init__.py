"""``scattertag serve``: a tagging service with a web page, fed by uploads, folders and Tiled.

One process holds one model (:class:`scattertag.prediction.pipeline.Predictor`); frames from
concurrent requests, a watched folder and a Tiled node are prepared in a pool and batched
through the network (:mod:`.tagger`). Results live in SQLite (:mod:`.store`), corrections
are appended to a labels TSV (:mod:`.labels`), pictures are drawn on demand
(:mod:`.pictures`), the HTTP API and page are in :mod:`.app`.
"""
