"""Packaging: ``pip install -e .`` installs the library and the mm-* tools on PATH.

The tools keep the names decocare users' scripts call (``mm-latest.py`` ...); ``bin/`` holds the
same tools as thin scripts for running from a checkout.  The udev rule ships as package data so
``insert.sh`` (and anyone without the checkout) can find it inside the installed package.
"""
from setuptools import setup, find_packages

# name on PATH -> function; bin/ holds the same tools as scripts: the read tools, the write
# tools (decocare.dosing, docs/dosing.md), and two whose module offers only main(argv), wrapped
# by decocare.tools.entry.
TOOLS = {
    "mm-send-comm.py": "decocare.tools.send_comm:cli",
    "mm-latest.py": "decocare.tools.latest:cli",
    "mm-pages.py": "decocare.tools.pages:cli_pages",
    "mm-history.py": "decocare.tools.pages:cli_history",
    "mm-glucose.py": "decocare.tools.pages:cli_glucose",
    "mm-temp-basals.py": "decocare.dosing:temp_basals_cli",
    "mm-bolus.py": "decocare.dosing:bolus_cli",
    "mm-set-suspend.py": "decocare.dosing:set_suspend_cli",
    "mm-set-rtc.py": "decocare.dosing:set_rtc_cli",
    "mm-press-key.py": "decocare.dosing:press_key_cli",
    "mm-select-profile.py": "decocare.dosing:select_profile_cli",
    "mm-decode-history-page.py": "decocare.tools.entry:mm_decode_history_page",
    "decocare-emulator": "decocare.tools.entry:decocare_emulator",
}

setup(
    name="decocare",
    version="0.1.0",
    description="Audit and command Medtronic MiniMed Paradigm pumps through the CareLink USB stick",
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={"decocare": ["etc/*.rules"]},
    python_requires=">=3.9",
    install_requires=["pyserial>=3.4", "python-dateutil"],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["%s = %s" % item for item in TOOLS.items()]},
)
