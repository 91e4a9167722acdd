"""One Locust process's life: start-up and preparation, interrupts, and the finish (final files,
report). The locustfile wires Locust's events to these functions and holds nothing else."""
