#!/usr/bin/env python3
"""mm-set-rtc.py: see `mm-set-rtc.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import set_rtc_cli

if __name__ == "__main__":
    set_rtc_cli()
