"""Model-running probes: the head-pattern probe set and the generation logit trace."""
