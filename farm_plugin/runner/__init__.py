"""The worker's core: run a chunk of a job's frames through a ComfyUI and write the results."""
