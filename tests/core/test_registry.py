"""Every registered component imports, has a strict config model, and has tests."""

import ast
from pathlib import Path

import apache_beam as beam
import pytest

from airis_mon.config import ComponentConfig
from airis_mon.errors import ConfigError
from airis_mon.registry import COMPONENTS, get_component, known_types

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: f"{c.kind}:{c.type_name}")
def test_registered_component_loads(component):
    model = component.config_model()
    assert issubclass(model, ComponentConfig)
    assert model.model_config["extra"] == "forbid"
    assert model.model_fields["type"].default == component.type_name
    assert issubclass(component.transform_class(), beam.PTransform)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: f"{c.kind}:{c.type_name}")
def test_registered_component_has_a_test_folder_with_tests(component):
    folder = TESTS / f"{component.kind}s" / component.type_name
    test_files = sorted(folder.glob("test_*.py"))
    assert test_files, f"{component.kind} {component.type_name!r} is registered but {folder} has no test_*.py"
    test_functions = [
        node.name
        for path in test_files
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    assert test_functions, f"{folder} defines no test functions"


def test_type_names_are_unique_per_kind():
    keys = [(c.kind, c.type_name) for c in COMPONENTS]
    assert len(keys) == len(set(keys))


def test_unknown_types_are_config_errors_listing_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        get_component("sink", "kafka")
    known = ", ".join(known_types("sink"))
    assert caught.value.problems == [f"unknown sink type 'kafka' (known: {known})"]
    assert {"parquet", "notification_log"} <= set(known_types("sink"))
    assert {"payload_files", "gateway"} <= set(known_types("source"))
