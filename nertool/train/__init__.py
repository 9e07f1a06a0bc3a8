"""Training: the Accelerate loop with checkpoints, resume, signals and its reporters (``loop``)."""
