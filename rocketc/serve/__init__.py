"""Serving the light net from a run directory: the bundle, `rocketc predict`, `rocketc serve`.

A run directory's `light.onnx` plus `preprocess.json` is all this package reads: no training
code, no booster, and never torch (tests/test_serving_no_torch.py checks it in a fresh
interpreter). `bundle` loads and checks them and scores rows; `predict` streams a CSV or Parquet
file through it; `app` is the ASGI application and `server` runs it under uvicorn.
"""
