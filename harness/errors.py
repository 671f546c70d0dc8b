"""The one exception type for a user's mistake: one sentence, exit code 2."""

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its inputs; the message says what to do."""
