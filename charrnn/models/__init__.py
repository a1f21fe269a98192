"""Model kinds (registry.py), the recurrent core they share (core.py), one module per
cell, and the language model that puts a core between an embedding and a head (lm.py)."""
