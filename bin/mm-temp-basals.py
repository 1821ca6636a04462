#!/usr/bin/env python3
"""mm-temp-basals.py: see `mm-temp-basals.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import temp_basals_cli

if __name__ == "__main__":
    temp_basals_cli()
