"""Server side of AcuLa Edge: corpora, report writing, text teacher, audio
encoders, losses, alignment training and evaluation.  Needs the ``[train]`` extra."""
