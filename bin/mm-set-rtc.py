#!/usr/bin/env python3
"""mm-set-rtc.py: see `mm-set-rtc.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.set_rtc_main)
