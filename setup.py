"""AIRIS-MON: a monitoring hub for AI/ML systems, built on Apache Beam.

Install the core (enough to run ``python -m pipelines.main`` on the bundled
sample data)::

    pip install -e .

Install everything, every integration plus the test tools, in ONE resolver
call so that pip keeps ``protobuf<7`` as apache-beam requires::

    pip install -e ".[all,test]"
"""

from pathlib import Path

from setuptools import find_packages, setup

# apache-beam 2.77 needs protobuf < 7; listing the bound here keeps every
# extra inside the same resolver decision.
CORE = [
    "apache-beam>=2.77.0,<2.78",
    "protobuf>=4.25,<7",
    "numpy>=1.26",
    "pyarrow>=17",
    "pydantic>=2.7,<3",
    "PyYAML>=6",
    "requests>=2.31",
    "Jinja2>=3.1",  # notification templates (sinks.delivery.templates); pure Python
    "ddsketch>=3.0,<4",  # the distributions' definition (transforms.distributions); pure Python
]

EXTRAS = {
    # One entry per integration family; `all` is their union.
    "gcp": [
        "apache-beam[gcp]>=2.77.0,<2.78",
        "google-cloud-monitoring>=2.21",
        "google-cloud-aiplatform>=1.60",
        "google-cloud-secret-manager>=2.20",
    ],
    "aws": ["boto3>=1.34"],
    "mlflow": ["mlflow>=3.1,<4"],
    "kubeflow": ["kfp>=2.7,<3"],
    "tfserving": [
        "grpcio>=1.60",
        "tensorflow-serving-api>=2.15",
        "prometheus-client>=0.20",
    ],
    "prometheus": ["prometheus-client>=0.20"],
    "ldap": ["ldap3>=2.9"],
    "github": ["PyGithub>=2.5"],
    "gateway": ["fastapi>=0.110", "uvicorn>=0.29", "httptools>=0.6", "uvloop>=0.19", "orjson>=3.9", "msgspec>=0.18"],
    "console": [
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "duckdb>=1.1",
        "strawberry-graphql>=0.240",
        "python-multipart>=0.0.9",
    ],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS["test"] = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "ruff>=0.6",
    "moto>=5.0",
    "flask>=3",
    "flask-cors>=4",
    "aiosmtpd>=1.4",
    "cryptography>=42",
    "schemathesis>=4.0,<5",
    "playwright>=1.45",  # drives Debian's chromium (its own browser download is not used)
    "scipy>=1.11",  # the drift statistics' oracle (scipy.stats)
]

setup(
    name="airis-mon",
    version="0.1.0",
    description="AIRIS-MON: monitoring hub for AI/ML systems on Apache Beam",
    long_description=Path("README.md").read_text(encoding="utf-8") if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks", "benchmarks.*"]),
    package_data={"airis_mon": ["sample_data/*"], "console": ["templates/*.html", "static/*", "schema.graphql"]},
    install_requires=CORE,
    extras_require=EXTRAS,
)
