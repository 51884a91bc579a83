"""ONNX / TFLite writers, int8 quantisation and the model bundle (server side)."""

if __name__ != "acula.export":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.export: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")
