#!/usr/bin/env python3
"""mm-glucose.py: see `mm-glucose.py --help` (the tool lives in decocare.tools.pages)."""
from decocare.tools.pages import cli_glucose

if __name__ == "__main__":
    cli_glucose()
