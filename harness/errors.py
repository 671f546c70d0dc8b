"""Exit codes of the harness command, and the exception type for a user's mistake."""

EXIT_FAILED_RUNS = 1  # the suite ran; some runs failed or timed out
EXIT_USAGE = 2  # a mistake in the command or the suite: nothing was run
EXIT_RESULTS_LOST = 3  # results could not be stored safely (replaced, truncated, disk full): stopped


class UsageError(Exception):
    """A mistake in the command line or its inputs; the message says what to do."""
