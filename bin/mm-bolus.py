#!/usr/bin/env python3
"""mm-bolus.py: see `mm-bolus.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.bolus_main)
