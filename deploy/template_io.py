"""Shared helpers of the offline template checks: where things are and how to read them."""

import json
import pathlib
import re

from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
MAKEFILE_PATH = REPO_ROOT / "steps" / "Makefile"
STATE_MACHINE_LOGICAL_ID = "ImagePipeline"
API_LOGICAL_ID = "ImageApi"


def load_template():
    """template.yaml as a dict, intrinsic functions in their long form ({"Ref": ...})."""
    return yaml_parse(TEMPLATE_PATH.read_text())


def state_machine_properties(template):
    return template["Resources"][STATE_MACHINE_LOGICAL_ID]["Properties"]


def definition_path(template):
    """The ASL file named by the state machine's DefinitionUri, relative to the template."""
    return REPO_ROOT / state_machine_properties(template)["DefinitionUri"]


def load_definition(template):
    return json.loads(definition_path(template).read_text())


def api_definition(template):
    return template["Resources"][API_LOGICAL_ID]["Properties"]["DefinitionBody"]


_BUILD_TARGET = re.compile(r'^build-(\w+): lambda-binaries\n\tcp "\$\(BOOTSTRAPS\)/([\w-]+)/bootstrap" "\$\(ARTIFACTS_DIR\)/bootstrap"$', re.MULTILINE)


def built_binaries():
    """Function logical id -> the binary of the steps crate that steps/Makefile (what `sam build`
    runs for BuildMethod makefile) puts in that function's artifact."""
    return dict(_BUILD_TARGET.findall(MAKEFILE_PATH.read_text()))
