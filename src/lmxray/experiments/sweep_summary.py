"""The sweep summary's layout: what summary.json holds and which version of it this lmxray writes and reads."""

SUMMARY_SCHEMA = 2  # summary.json layout: 2 adds the length-matched split
