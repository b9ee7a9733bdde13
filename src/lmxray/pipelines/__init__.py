"""Pipelines: the model runs behind one output (what a report needs: traces, twin, head scores), in one call."""
