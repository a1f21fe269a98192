"""The training loop and everything around a run: its plan, checkpoints, devices,
distributed processes, the schedule and the events it reports."""
