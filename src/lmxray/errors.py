"""User-facing errors: one line that names the problem and the fix.

The rule, for the Python API and the CLI alike: every user error is an
``LmxrayError``, a ``ValueError`` subclass. Library messages name Python
parameters (``top_k``) and list them in ``params``; the CLI prints the same
line with each listed parameter replaced by its flag (``--top-k``).
"""


class LmxrayError(ValueError):
    """A user error (bad input, missing file, unsupported model).

    The CLI prints it on one line and exits with code 2; library callers catch it
    like any ``ValueError``.
    """

    def __init__(self, problem: str, fix: str | None = None, *, params: tuple[str, ...] = ()):
        self.problem = problem
        self.fix = fix
        self.params = tuple(params)  # Python parameter names the message mentions
        super().__init__(f"{problem} — {fix}" if fix else problem)
