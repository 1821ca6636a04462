#!/usr/bin/env python3
"""mm-report.py: see `mm-report.py --help`; every tool is listed in decocare/tools/registry.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from decocare.tools.registry import launch  # noqa: E402

if __name__ == "__main__":
    launch("mm-report.py")
