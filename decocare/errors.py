"""Typed errors carried from the wire up to the command line.

Every tool prints ``str(error)`` on one line and exits with ``error.exit_code``, so scripts can
tell a port problem from a silent pump from a refusal from an uncertain write.
"""

# Exit codes: the one table (README "Exit codes" and docs/exit-codes.md are generated from it).
EXIT_CODES = (
    (0, "EXIT_OK", "ok"),
    (1, "EXIT_ERROR", "another error (insert.sh: could not load the driver / no stick / not root / not Linux)"),
    (2, "EXIT_USAGE", "bad command line or input (e.g. a serial that is not six digits, a --model the "
                      "pump contradicts, an unwritable --out)"),
    (3, "EXIT_PARTIAL", "a page decoded only in part (the output is still printed)"),
    (4, "EXIT_PORT", "port missing, busy or permission denied; no stick found; the stick was unplugged"),
    (5, "EXIT_NO_RESPONSE", "the stick or the pump did not answer, or communication broke down "
                            "(a download: pages the pump reported are missing)"),
    (6, "EXIT_REFUSED", "refused: by the pump (NAK), or by decocare's own checks before sending"),
    (7, "EXIT_UNCERTAIN", "a write was sent and its outcome is unknown (also when interrupted after "
                          "sending): check the pump"),
    (130, "EXIT_INTERRUPTED", "interrupted (Ctrl-C, SIGTERM) before anything that changes the pump was sent"),
)
(EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_PORT, EXIT_NO_RESPONSE, EXIT_REFUSED,
 EXIT_UNCERTAIN, EXIT_INTERRUPTED) = (code for code, _, _ in EXIT_CODES)

# What the pump means by the code of a NAK (spec protocol.md §4.1, §5.2 [ECC1, MMK; 08 and 0D OBS]):
# the one table the session, the write flow, the download and the emulator read.
NAK_REFUSED, NAK_RANGE, NAK_BOLUSING, NAK_NO_PAGE = 0x08, 0x09, 0x0C, 0x0D
NAK_CODES = {
    NAK_REFUSED: "command refused: not supported by this pump or not allowed in its current state "
                 "(e.g. an absolute temp basal on a pump set to percent temps)",
    NAK_RANGE: "value out of range: over the pump's maximum setting",
    NAK_BOLUSING: "a bolus is in progress",
    NAK_NO_PAGE: "no such history page",
}


def nak_text(code):
    """The meaning of a pump NAK code, for messages."""
    return NAK_CODES.get(code, "unknown NAK code")


class DecocareError(Exception):
    """Base of every error decocare raises on purpose."""
    exit_code = EXIT_ERROR


class BadInput(DecocareError, ValueError):
    """A value, file or argument given by the user is not acceptable."""
    exit_code = EXIT_USAGE


class UnknownModel(BadInput):
    """A pump model number decocare does not know."""


class ModelMismatch(BadInput):
    """The model given by the user is not the one the pump reports: the pump is the truth."""


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


class StickSilent(NoResponse):
    """The stick stopped answering on USB altogether (frozen): not worth another try."""


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


class UploadError(DecocareError):
    """An upload to a Nightscout site failed (unreachable, secret refused, an answer that is not
    Nightscout's); the message says how many documents were sent before the failure."""
    exit_code = EXIT_ERROR
