"""Looking inside a model: tracing a text (trace.py), statistics over what it shows
(stats.py), export to JSON (export.py) and the terminal's pictures (view.py)."""
