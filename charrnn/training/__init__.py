"""The training loop and everything around a run: its plan, checkpoints, the
schedule and the events it reports. (Devices and distributed processes are
charrnn/runtime/.)"""
