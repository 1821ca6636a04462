#!/usr/bin/env python3
"""mm-decode-history-page.py: see --help. A thin script over decocare.tools.history_cli."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from decocare.tools.history_cli import decode_page_main, script  # noqa: E402

if __name__ == "__main__":
    script(decode_page_main)
