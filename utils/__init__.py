"""Training utilities: distributed setup, logging, checkpoints, optimiser and schedule, losses."""
