"""seghandwriting: handwriting-erasure training with live VisualDL and health status in Redis."""

__version__ = "0.1.0"
