"""The one exception class for bad input: the command line prints it as one line, exit code 2.

Library code raises :class:`UserError` when the caller's input is unusable (an argument out
of range, a file that is not what it should be); the message names the argument or file and
the problem. It is a ValueError, so callers catching ValueError keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input (argument, file or directory) described in one line; no traceback needed."""
