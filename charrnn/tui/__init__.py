"""The terminal app: watch a model learn, look at its activations, explore a checkpoint.

The only package in charrnn that imports Textual. `app.py` holds the App and the
training worker, `bridge.py` turns telemetry into messages, `messages.py` the
messages themselves; the screens and widgets render what `state.py` keeps.
`runs.py` and `explorer.py` hold the non-visual work (building a trainer from a
form, generating and tracing text) and import neither Textual nor, at module
level, torch.
"""
