from setuptools import setup, find_packages

setup(
    name="decocare",
    version="0.1.0",
    description="Audit and command Medtronic MiniMed Paradigm pumps through the CareLink USB stick",
    packages=find_packages(exclude=["tests", "tests.*"]),
    python_requires=">=3.9",
    install_requires=["pyserial>=3.4", "python-dateutil"],
    extras_require={"test": ["pytest"]},
    include_package_data=True,
)
