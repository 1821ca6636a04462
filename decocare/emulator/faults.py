"""Fault injection for the emulated stick + pump (spec protocol.md §7.3 rule 5, §9.8).

Each failure point fires with a probability from the spec string, or on demand through
``force(name, times)``; every firing is counted in ``counts`` so a test can check what the
client did about exactly the faults that happened.
"""
import random

from ..errors import BadInput

# name -> what happens when it fires (shown by ``--help`` and docs/emulator.md)
POINTS = {
    "timeout": "the pump does not hear the command: kind 5 after the stick's retries, nothing executed",
    "drop_args": "a command with arguments: the pump ACKs the command packet but never gets the "
                 "argument packet: kind 5, nothing executed",
    "lost_ack": "a write is executed but its ACK is lost: the stick reports kind 5",
    "nak": "the pump refuses the command (NAK, code nak_code, default 0x08), nothing executed",
    "corrupt": "one ReadRadio answer carries a bad data CRC8 (a byte flipped on the way)",
    "stall": "a multi-frame reply stops mid-page; the next command then gets one kind 5",
    "late_usb": "one USB answer is held back past the host's read timeout and delivered to "
                "whatever the host reads next (desync)",
}
FLAGS = {
    "asleep": "the pump radio starts asleep: nothing answers until PowerControl",
    "out_of_range": "the pump never answers (kind 5 after the retries), PowerControl included",
}


def help_text():
    lines = ["comma-separated faults, NAME=PROBABILITY (0..1) or a flag:"]
    lines += ["  %s=P: %s" % (name, doc) for name, doc in POINTS.items()]
    lines += ["  %s: %s" % (name, doc) for name, doc in FLAGS.items()]
    lines += ["  seed=N: random seed (default 0); nak_code=N: code of injected NAKs"]
    return "\n".join(lines)


class Faults:
    """Probabilities per failure point, forced one-shots, flags and counters."""

    def __init__(self, spec=None):
        self.prob = {name: 0.0 for name in POINTS}
        self.flags = set()
        self.forced = {name: 0 for name in POINTS}
        self.counts = {name: 0 for name in list(POINTS) + list(FLAGS)}
        self.nak_code = 0x08
        seed = 0
        if isinstance(spec, dict):
            spec = ",".join(k if v is True else "%s=%s" % (k, v) for k, v in spec.items())
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            name, _, value = item.partition("=")
            name = name.strip()
            if name in FLAGS and not value:
                self.flags.add(name)
            elif name == "seed":
                seed = _number(name, value, int)
                if seed < 0:
                    raise BadInput("fault seed must be 0 or more, got %s" % value)
            elif name == "nak_code":
                self.nak_code = _number(name, value, lambda v: int(v, 0))
                if not 0 <= self.nak_code <= 0xFF:
                    raise BadInput("fault nak_code must be a byte (0-255), got %s" % value)
            elif name in POINTS:
                p = _number(name, value, float)
                if not 0 <= p <= 1:
                    raise BadInput("fault %s: probability must be between 0 and 1, got %s" % (name, value))
                self.prob[name] = p
            else:
                raise BadInput("unknown fault %r (known: %s)" % (
                    name, ", ".join(list(POINTS) + list(FLAGS) + ["seed", "nak_code"])))
        self.rng = random.Random(seed)

    def force(self, name, times=1):
        """Make failure point ``name`` happen at its next ``times`` opportunities."""
        if name not in POINTS:
            raise BadInput("unknown fault %r (known: %s)" % (name, ", ".join(POINTS)))
        self.forced[name] += times

    def fire(self, name):
        """True when ``name`` happens at this opportunity (forced first, then by probability)."""
        if self.forced[name]:
            self.forced[name] -= 1
        elif not (self.prob[name] and self.rng.random() < self.prob[name]):
            return False
        self.counts[name] += 1
        return True

    def flag(self, name):
        """A standing condition (asleep, out_of_range); counted each time it decides an outcome."""
        if name in self.flags:
            self.counts[name] += 1
            return True
        return False


def _number(name, value, kind):
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput("fault %s needs a number, got %r" % (name, value))
