"""Pump models and the model families whose differences matter (spec protocol.md §6, history.md §1.2).

Everything that differs by model is derived here from the model number, so decoders,
commands and the emulator ask one place: ``get_model("522").family`` etc.
"""
from dataclasses import dataclass

from .errors import UnknownModel

# generation (last two digits) -> history family (history.md §1.2; 508/511 decode like x12)
_FAMILY_BY_GENERATION = {
    8: "x12", 11: "x12", 12: "x12",
    15: "x15",
    22: "x22",
    23: "x23", 30: "x23", 40: "x23",
    51: "x51", 54: "x51",
}

KNOWN = ("508", "511", "512", "515", "522", "523", "530", "540", "551", "554",
         "711", "712", "715", "722", "723", "730", "740", "751", "754")

MAX_HISTORY_PAGES = 36     # pages 0..35 on every pump that answers ReadCurPageNumber (spec §5.3)


@dataclass(frozen=True)
class Model:
    number: str            # "522"
    generation: int        # 22
    family: str            # "x22"

    @property
    def larger(self):
        """x23+ layout: 2-byte bolus amounts in 1/40 U, longer records (decocare's ``larger``)."""
        return self.generation >= 23

    @property
    def bolus_strokes(self):
        """Strokes per unit for bolus, reservoir and bolus-related history fields."""
        return 40 if self.larger else 10

    basal_strokes = 40     # basal and temp-basal rates are 1/40 U/h for every model

    @property
    def reservoir_units(self):
        """5xx pumps hold 176 U, 7xx pumps 300 U."""
        return 300 if self.number.startswith("7") else 176

    @property
    def history_pages(self):
        """How many history pages the pump keeps (x12: 32, others 36)."""
        return 32 if self.generation <= 12 else MAX_HISTORY_PAGES

    @property
    def has_cgm(self):
        """x22 and later pumps keep glucose and ISIG pages."""
        return self.generation >= 22

    max_bolus = 25.0       # U, the pump's own ceiling whatever the settings say
    max_basal = 35.0       # U/h

    def bolus_increment(self, units):
        """The pump's bolus step for a bolus of this size (x23+: 0.025/0.05/0.1 U; older 0.1 U)."""
        if not self.larger:
            return 0.1
        if units <= 1:
            return 0.025
        if units <= 10:
            return 0.05
        return 0.1

    def basal_increment(self, rate):
        """The pump's basal/temp-basal step (x23+: 0.025 below 1 U/h, 0.05 below 10, else 0.1)."""
        if not self.larger:
            return 0.05
        if rate < 1:
            return 0.025
        if rate < 10:
            return 0.05
        return 0.1

    def __str__(self):
        return self.number


def get_model(number):
    """Return the Model for '522', 522, 'MMT-522', raising UnknownModel for anything else."""
    text = str(number).strip().upper()
    if text.startswith("MMT-"):
        text = text[4:]
    text = text.rstrip("?")
    if text not in KNOWN:
        raise UnknownModel("unknown pump model %r (known: %s)" % (number, ", ".join(KNOWN)))
    generation = int(text[1:])
    return Model(number=text, generation=generation, family=_FAMILY_BY_GENERATION[generation])
