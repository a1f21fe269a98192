"""Facts about where a run executes: the device and precision (hardware.py) and the
processes of a distributed run (distributed.py). The layer just above the spec:
every layer from data up may ask them; they import only the spec (config, errors)."""
