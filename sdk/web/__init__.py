"""The browser page (``index.html``, ``acula.js``) and its Python side.

``python -m acula.sdk.web.build`` writes what the page loads (``model/``: the student ONNX graph, the prompt bank
and ``model.json`` with the front-end tables, calibration and operating point) from a verified bundle;
``sdk.web.harness`` serves the page and drives it in a headless Chromium for the tests and
``benchmarks.web``.  Importing this package imports nothing: no torch, no playwright.
"""
