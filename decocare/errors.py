"""Typed errors carried from the wire up to the command line.

Every tool prints ``str(error)`` on one line and exits with ``error.exit_code``, so scripts can
tell a port problem from a silent pump from a refusal from an uncertain write.
"""

EXIT_OK = 0
EXIT_ERROR = 1        # anything else that went wrong
EXIT_USAGE = 2        # bad command line or bad input file/value
EXIT_PARTIAL = 3      # a page decoded only in part (unknown record, truncated, bad CRC)
EXIT_PORT = 4         # port missing, busy, permission denied
EXIT_NO_RESPONSE = 5  # stick or pump did not answer / communication broke down
EXIT_REFUSED = 6      # the pump (or our own safety checks) refused the command
EXIT_UNCERTAIN = 7    # a write was sent and its outcome is unknown: check the pump


class DecocareError(Exception):
    """Base of every error decocare raises on purpose."""
    exit_code = EXIT_ERROR


class BadInput(DecocareError, ValueError):
    """A value, file or argument given by the user is not acceptable."""
    exit_code = EXIT_USAGE


class UnknownModel(BadInput):
    """A pump model number decocare does not know."""


class NotAPage(BadInput):
    """A file that is not a history/glucose page."""


class PartialPage(DecocareError):
    """A page could only be decoded in part; ``result`` holds what was decoded."""
    exit_code = EXIT_PARTIAL

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class PortError(DecocareError):
    """The serial port cannot be opened or used (missing, busy, permission denied)."""
    exit_code = EXIT_PORT


class CommError(DecocareError):
    """Talking to the stick or the pump failed."""
    exit_code = EXIT_NO_RESPONSE


class NoResponse(CommError):
    """No answer in time: USB silent, or the pump did not reply over RF (kind 5)."""


class StickNAK(CommError):
    """The stick answered 01 66 <code> (command rejected by the stick)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class CRCError(CommError):
    """A frame or a page failed its CRC check."""


class Desync(CommError):
    """A reply did not belong to the request (a late answer was read)."""


class Refused(DecocareError):
    """The pump refused the command (NAK with a code), or a safety check refused to send it."""
    exit_code = EXIT_REFUSED

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Unsupported(Refused):
    """The pump model does not have this command; nothing was sent."""


class Uncertain(DecocareError):
    """A write was sent but its outcome is unknown. Never retry: check the pump."""
    exit_code = EXIT_UNCERTAIN
