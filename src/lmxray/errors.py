"""User-facing errors: one line that names the problem and the fix."""


class LmxrayError(Exception):
    """A user error (bad input, missing file, unsupported model).

    The CLI prints ``str(error)`` on one line and exits with code 2; library
    callers catch it like any exception.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)
