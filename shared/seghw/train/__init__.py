"""Training: the loop (loop.py), its observers (observers/), and the runner that wires them."""
