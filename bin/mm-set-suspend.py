#!/usr/bin/env python3
"""mm-set-suspend.py: see `mm-set-suspend.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import set_suspend_cli

if __name__ == "__main__":
    set_suspend_cli()
