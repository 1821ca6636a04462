#!/usr/bin/env python3
"""mm-press-key.py: see `mm-press-key.py --help` and docs/dosing.md (the tool lives in decocare.dosing)."""
from decocare.dosing import press_key_cli

if __name__ == "__main__":
    press_key_cli()
