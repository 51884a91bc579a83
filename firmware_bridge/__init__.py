"""Stethoscope firmware bridge: wire protocol, transports, firmware-side constants."""
