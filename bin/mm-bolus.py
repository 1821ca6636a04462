#!/usr/bin/env python3
"""mm-bolus.py: see `mm-bolus.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import bolus_cli

if __name__ == "__main__":
    bolus_cli()
