"""Serving, split at its seams:

    source      where the model comes from (folder, Bento, registry), prepared once per server,
                warmed up per worker, followed when its alias moves
    model       ServedModel: a loaded Forecaster with the three parts below
    rules       parsing and validation of a request's series (FieldError, RequestError)
    fastpath    the array fast path (Forecaster.predict_arrays) and the micro-batcher
    writer      the response writer (float32 rows, orjson)
    schemas     the request/response schemas (the model-independent rules)
    middleware  the HTTP guard: request ids, limits, token, BentoML's behaviour replaced
    service     the BentoML service

``forecaster.serving.service`` imports BentoML; the other modules do not.
"""
