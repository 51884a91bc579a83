"""Distillation of the aligned teacher into a small streaming student (server side)."""

if __name__ != "acula.distill":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.distill: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")
