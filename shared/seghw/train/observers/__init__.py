"""Observers of the loop: metrics history, checkpoints, stats file, VisualDL, progress."""
