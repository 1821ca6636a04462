#!/usr/bin/env python3
"""mm-latest.py: see `mm-latest.py --help` (the tool lives in decocare.tools.latest)."""
from decocare.tools.latest import cli

if __name__ == "__main__":
    cli()
