"""Packaging: ``pip install -e .`` installs the library and the tools on PATH.

The tools keep the names decocare users' scripts call (``mm-latest.py`` ...).  Their one table is
``decocare/tools/registry.py`` (read here without importing the package); ``bin/`` holds the
same tools as thin scripts for running from a checkout.  The udev rule ships as package data so
``insert.sh`` (and anyone without the checkout) can find it inside the installed package.
"""
import os
import runpy

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
registry = runpy.run_path(os.path.join(HERE, "decocare", "tools", "registry.py"))
SCRIPTS = ["%s = decocare.tools.registry:%s" % (name, registry["entry_name"](name))
           for name in registry["INSTALLED"]]

setup(
    name="decocare",
    version="0.1.0",
    description="Audit and command Medtronic MiniMed Paradigm pumps through the CareLink USB stick",
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={"decocare": ["etc/*.rules"]},
    python_requires=">=3.9",
    install_requires=["pyserial>=3.4", "python-dateutil"],
    extras_require={"test": ["pytest"], "report": ["matplotlib"]},
    entry_points={"console_scripts": SCRIPTS},
)
