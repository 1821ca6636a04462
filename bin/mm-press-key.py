#!/usr/bin/env python3
"""mm-press-key.py: see `mm-press-key.py --help` and docs/dosing.md (the flow lives in decocare.dosing)."""
from decocare import cli, dosing

if __name__ == "__main__":
    cli.run(dosing.press_key_main)
