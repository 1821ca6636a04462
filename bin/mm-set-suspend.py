#!/usr/bin/env python3
"""mm-set-suspend.py: see `mm-set-suspend.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.set_suspend_main)
