#!/usr/bin/env python3
"""mm-select-profile.py: see `mm-select-profile.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import select_profile_cli

if __name__ == "__main__":
    select_profile_cli()
