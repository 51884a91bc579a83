"""Server side of AcuLa Edge: corpora, report writing, text teacher, audio
encoders, losses, alignment training and evaluation.  Needs the ``[train]`` extra."""

if __name__ != "acula.aligner":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.aligner: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")
