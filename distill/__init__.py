"""Distillation of the aligned teacher into a small streaming student (server side)."""
