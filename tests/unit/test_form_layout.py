"""The start form's layout (lifecycle/form_layout.py): every option the form offers has a group and a
short label, and each shape option is shown for the shapes the registry says read it."""

from __future__ import annotations

from locust.argument_parser import default_args_dict, get_empty_argument_parser

import shapes
from lifecycle.form_layout import OTHER, form_layout, shapes_by_option
from metrics import llm, results
from users.scenario_options import add_scenario_arguments
from users.settings import add_arguments as add_gemini_arguments


def offered_options() -> set[str]:
    """The options the start form offers: those the locustfile registers with include_in_web_ui
    (registered here as locustfile.py does; importing it would install its signal guard)."""
    parser = get_empty_argument_parser()
    for add in (add_gemini_arguments, add_scenario_arguments, shapes.add_shape_arguments, llm.add_arguments,
                results.add_arguments):  # fmt: skip
        add(parser)
    # as Locust's ui_extra_args_dict picks them: parsed options in the web UI, not Locust's own
    parsed = set(vars(parser.parse_args([])))
    return parsed & set(parser.args_included_in_web_ui) - set(default_args_dict())


def test_every_option_on_the_form_has_a_group_and_a_short_label() -> None:
    layout = form_layout("/gemini/stage")
    grouped = {dest for group in layout["groups"] if group["key"] != OTHER.key for dest in group["options"]}
    offered = offered_options()
    assert len(offered) >= 40
    # A new option joins a group and gets a label here; else the flat list this layout replaced is back.
    assert offered - grouped == set()
    assert {dest: layout["labels"].get(dest) for dest in offered if not layout["labels"].get(dest)} == {}
    assert max(len(layout["labels"][dest]) for dest in offered) <= 30


def test_shape_options_follow_the_registry() -> None:
    shapes = shapes_by_option()
    assert shapes["peak_users"] == ("ramp",)
    assert shapes["step_duration"] == ("step", "capacity")
    assert "capacity" not in shapes["stage_classes"] and "spike" in shapes["stage_classes"]
    # a shape's own options come before the ones several shapes share
    dests = list(shapes)
    assert dests.index("rate_step") < dests.index("stage_classes")
    shape_group = next(g for g in form_layout("/x")["groups"] if g["key"] == "shape")
    assert shape_group["options"][0] == "shape" and set(shape_group["options"][1:]) == set(shapes)
