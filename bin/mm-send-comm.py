#!/usr/bin/env python3
"""mm-send-comm.py: see `mm-send-comm.py --help` (the tool lives in decocare.tools.send_comm)."""
from decocare.tools.send_comm import cli

if __name__ == "__main__":
    cli()
