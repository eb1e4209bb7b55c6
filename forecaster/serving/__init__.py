"""Serving: the BentoML service (``service.py``), its request/response schemas, the request rules
and batched prediction (``predict.py``) and the HTTP guard middleware (``middleware.py``).

``forecaster.serving.service`` imports BentoML; the other modules do not.
"""
