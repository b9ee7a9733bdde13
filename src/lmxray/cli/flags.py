"""Library parameter names as the CLI's flags, so an error raised by the library reads in the user's terms."""

from __future__ import annotations

import re

from lmxray.errors import LmxrayError

FLAGS = {
    "top_k": "--top-k", "position": "--position", "threshold": "--threshold", "layers": "--layers",
    "heads": "--heads", "expect": "--expect", "n_repeats": "--repeats", "steps": "--steps",
    "temperature": "--temperature", "init": "--init", "seed": "--seed", "tokens": "--token", "versus": "--vs", "groups": "--group", "min_share": "--min-share",
}


def cli_message(error: LmxrayError) -> str:
    """The error's line with every parameter it names written as the CLI flag that sets it."""
    text = str(error)
    for param in error.params:
        flag = FLAGS.get(param)
        if flag:
            text = re.sub(rf"(?<![\w-]){re.escape(param)}(?![\w-])", flag, text)
    return text
