#!/usr/bin/env python3
"""mm-temp-basals.py: see `mm-temp-basals.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.temp_basals_main)
