"""Names the pump uses that several layers share: the keypad keys and the three basal patterns.
One row each, in the pump's own numbering (the byte KeypadPush / SelectBasalProfile send, the
number ReadSettings and the SelectBasalProfile history record hold)."""

# KeypadPush 0x5B parameter byte = the index (spec protocol.md §5.1)
KEYS = ("EASY", "ESC", "ACT", "UP", "DOWN")

# (short name the tools take, CareLink's name in history records) by pattern number 0, 1, 2
PATTERNS = (("STD", "standard"), ("A", "pattern a"), ("B", "pattern b"))
PATTERN_NAMES = tuple(short for short, _ in PATTERNS)           # "STD", "A", "B"
PATTERN_RECORD_NAMES = tuple(long for _, long in PATTERNS)      # "standard", "pattern a", ...


def pattern_number(name):
    """0, 1 or 2 for "STD"/"standard"/"A"/"pattern a"/"B"/... (case-insensitive), else None."""
    key = str(name).strip().lower()
    for number, (short, long) in enumerate(PATTERNS):
        if key in (short.lower(), long):
            return number
    return None
