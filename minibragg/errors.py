"""The one exception minibragg raises on purpose.

Every message is a single line naming the flag or the file (and line) at fault; only the CLI
turns it into `minibragg: error: ...` on stderr and exit status 2.
"""


class MinibraggError(Exception):
    """Bad input: a flag, a value, a file. Exit 2, no image written."""

    exit_code = 2
