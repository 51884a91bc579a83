"""Stethoscope firmware bridge: wire protocol, transports, firmware-side constants."""

if __name__ != "acula.firmware_bridge":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.firmware_bridge: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")
