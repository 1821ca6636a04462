"""python -m decocare.emulator: its command line is decocare/tools/emulator.py."""
from decocare.tools.registry import launch

launch("decocare.emulator")
