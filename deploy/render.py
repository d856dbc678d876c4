"""Renders template.yaml into the two forms the linters need, in OUT_DIR:

- template.inline.json: the SAM template with the ASL file inlined as `Definition`, so that
  cfn-lint validates the state machine too (it does not open DefinitionUri files);
- template.translated.json: the CloudFormation that the SAM transform produces, so that checkov
  also sees the roles, rules and stage that SAM generates. A checkov skip written on a SAM
  resource is carried to the resources generated from it (SAM names them after it). The state
  machine keeps its definition as a JSON object (`Definition`, equivalent to the string SAM
  writes), which is the form in which cfn-lint validates the states (rule E3601);
- image-pipeline.asl.json: the ASL file with every DefinitionSubstitutions placeholder replaced
  by a well-formed Lambda ARN, for asl-validator (which checks Resource ARNs). Rendering fails
  if a placeholder is left without a substitution.

Usage: python deploy/render.py OUT_DIR
"""

import copy
import json
import logging
import os
import pathlib
import re
import sys

from samtranslator.translator.transform import transform

import template_io

# Any S3 location will do: the transform only checks the form of CodeUri.
PLACEHOLDER_CODE_URI = "s3://imgflow-offline-render/code.zip"


class NoManagedPolicies:
    """The transform asks for AWS managed policy ARNs only for names it cannot resolve; this
    template names none, and there is no AWS account to ask."""

    def load(self):
        return {}


def inline_definition(template):
    inlined = copy.deepcopy(template)
    properties = template_io.state_machine_properties(inlined)
    properties["Definition"] = template_io.load_definition(template)
    del properties["DefinitionUri"]
    return inlined


def translate(template):
    sam = inline_definition(template)
    sam["Globals"]["Function"]["CodeUri"] = PLACEHOLDER_CODE_URI
    # The transform wants a region for ARNs of pseudo parameters; any will do offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated = transform(sam, {}, NoManagedPolicies())
    state_machine = translated["Resources"][template_io.STATE_MACHINE_LOGICAL_ID]["Properties"]
    del state_machine["DefinitionString"]
    state_machine["Definition"] = template_io.load_definition(template)
    carry_checkov_skips(template["Resources"], translated["Resources"])
    return translated


def carry_checkov_skips(sam_resources, generated_resources):
    for logical_id, resource in generated_resources.items():
        if logical_id in sam_resources:
            continue
        origin = max(
            (sam_id for sam_id in sam_resources if logical_id.startswith(sam_id)),
            key=len,
            default=None,
        )
        skips = sam_resources.get(origin, {}).get("Metadata", {}).get("checkov", {}).get("skip")
        if skips:
            metadata = resource.setdefault("Metadata", {})
            metadata.setdefault("checkov", {}).setdefault("skip", []).extend(copy.deepcopy(skips))


PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def substituted_definition(template):
    """The ASL text as AWS would run it, with a made-up ARN per substituted function."""
    properties = template_io.state_machine_properties(template)
    substitutions = properties["DefinitionSubstitutions"]
    text = template_io.definition_path(template).read_text()

    def arn(match):
        name = match.group(1)
        if name not in substitutions:
            raise SystemExit(f"placeholder ${{{name}}} has no DefinitionSubstitutions entry")
        function = substitutions[name]["Fn::GetAtt"][0]
        return f"arn:aws:lambda:us-east-1:123456789012:function:imgflow-{function}"

    return PLACEHOLDER.sub(arn, text)


def main(out_dir):
    # The transform logs feature-toggle notes meant for the SAM service itself.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template = template_io.load_template()
    (out / "template.inline.json").write_text(json.dumps(inline_definition(template), indent=1))
    (out / "template.translated.json").write_text(json.dumps(translate(template), indent=1))
    (out / "image-pipeline.asl.json").write_text(substituted_definition(template))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
