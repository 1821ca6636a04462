#!/usr/bin/env python3
"""mm-select-profile.py: see `mm-select-profile.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.select_profile_main)
