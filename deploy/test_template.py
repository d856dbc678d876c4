"""template.yaml against the deployment contract: least-privilege policies, event wiring,
function settings, and the rule that every linter suppression carries its reason.

Run: python -m unittest discover -s deploy -p 'test_*.py'
"""

import json
import unittest

import template_io

FUNCTION_BINARIES = {
    "ValidateFunction": "validate",
    "ReadExifFunction": "read-exif",
    "ResizeFunction": "resize",
    "WriteMetadataFunction": "write-metadata",
}
UPLOADS = {"Fn::Sub": "${ImageBucket.Arn}/uploads/*"}
PROCESSED = {"Fn::Sub": "${ImageBucket.Arn}/processed/*"}
BUCKET = {"Fn::GetAtt": ["ImageBucket", "Arn"]}
TABLE = {"Fn::GetAtt": ["ImageMetadata", "Arn"]}
READ_UPLOADS = [
    (("s3:GetObject", "s3:GetObjectVersion"), UPLOADS),
    # 404 rather than 403 for a missing object (see the template).
    (("s3:ListBucket",), BUCKET),
]
EXPECTED_GRANTS = {
    "ValidateFunction": READ_UPLOADS,
    "ReadExifFunction": READ_UPLOADS,
    "ResizeFunction": READ_UPLOADS + [(("s3:PutObject",), PROCESSED)],
    "WriteMetadataFunction": [
        (("dynamodb:PutItem", "dynamodb:GetItem"), TABLE),
        (
            ("states:GetExecutionHistory",),
            {
                "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                ":execution:${AWS::StackName}-image-pipeline:*"
            },
        ),
    ],
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def grants(policies):
    """(sorted actions, resource) for every Allow statement of inline policy documents."""
    found = []
    for policy in policies:
        for statement in policy["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for resource in as_list(statement["Resource"]):
                found.append((tuple(sorted(as_list(statement["Action"]))), resource))
    return found


def normalised(expected):
    return sorted(((tuple(sorted(actions)), resource) for actions, resource in expected), key=repr)


class DeploymentContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = template_io.load_template()
        cls.resources = cls.template["Resources"]
        cls.globals = cls.template["Globals"]["Function"]

    def function(self, logical_id):
        return self.resources[logical_id]["Properties"]

    # ------------------------------------------------------------ functions

    def test_functions_are_arm64_al2023_rust_binaries_built_from_the_steps_crate_by_its_makefile(self):
        self.assertEqual(self.globals["Runtime"], "provided.al2023")
        self.assertEqual(self.globals["Architectures"], ["arm64"])
        self.assertEqual(self.globals["Handler"], "bootstrap")
        self.assertEqual(self.globals["CodeUri"], "steps/")
        built = template_io.built_binaries()
        self.assertEqual(set(built), set(FUNCTION_BINARIES))
        for logical_id, binary in FUNCTION_BINARIES.items():
            with self.subTest(function=logical_id):
                metadata = self.resources[logical_id]["Metadata"]
                self.assertEqual(metadata["BuildMethod"], "makefile")
                self.assertEqual(metadata["WorkingDirectory"], ".")
                self.assertEqual(built.get(logical_id), binary)
                self.assertTrue((template_io.REPO_ROOT / "steps" / "src" / "bin" / f"{binary}.rs").is_file())

    def test_each_function_is_granted_exactly_what_it_touches(self):
        for logical_id, expected in EXPECTED_GRANTS.items():
            with self.subTest(function=logical_id):
                policies = self.function(logical_id)["Policies"]
                self.assertTrue(all("Statement" in policy for policy in policies), "inline statements only")
                self.assertEqual(sorted(grants(policies), key=repr), normalised(expected))

    def test_the_history_grant_names_the_state_machine_as_deployed(self):
        name = template_io.state_machine_properties(self.template)["Name"]
        self.assertEqual(name, {"Fn::Sub": "${AWS::StackName}-image-pipeline"})

    def test_settings_reach_the_functions_through_the_environment(self):
        variables = self.globals["Environment"]["Variables"]
        self.assertEqual(variables["IMGFLOW_MAX_BYTES"], {"Ref": "MaxBytes"})
        self.assertEqual(variables["IMGFLOW_MAX_PIXELS"], {"Ref": "MaxPixels"})
        self.assertEqual(variables["IMGFLOW_RENDITIONS"], {"Ref": "Renditions"})
        self.assertEqual(variables["IMGFLOW_KEEP_GPS"], {"Ref": "KeepGps"})
        self.assertEqual(variables["IMGFLOW_CACHE_CONTROL"], {"Ref": "CacheControl"})
        self.assertEqual(variables["RUST_LOG"], {"Ref": "LogLevel"})
        self.assertEqual(
            variables["IMGFLOW_PUBLIC_BASE_URL"],
            {"Fn::If": ["HasPublicBaseUrl", {"Ref": "PublicBaseUrl"}, {"Ref": "AWS::NoValue"}]},
        )
        table = self.function("WriteMetadataFunction")["Environment"]["Variables"]["IMGFLOW_TABLE_NAME"]
        self.assertEqual(table, {"Ref": "ImageMetadata"})

    def test_the_default_renditions_are_the_contract_defaults(self):
        renditions = json.loads(self.template["Parameters"]["Renditions"]["Default"])
        self.assertEqual(
            renditions,
            [
                {"name": "thumb", "maxWidth": 256, "maxHeight": 256, "format": "jpeg", "quality": 80},
                {"name": "medium", "maxWidth": 1280, "maxHeight": 1280, "format": "jpeg", "quality": 80},
            ],
        )

    # ------------------------------------------------------------ events

    def test_uploads_start_an_execution_with_the_whole_event(self):
        events = template_io.state_machine_properties(self.template)["Events"]
        (rule,) = events.values()
        self.assertEqual(rule["Type"], "EventBridgeRule")
        properties = rule["Properties"]
        self.assertEqual(
            properties["Pattern"],
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [{"Ref": "ImageBucket"}]}, "object": {"key": [{"prefix": "uploads/"}]}},
            },
        )
        self.assertNotIn("Input", properties)
        self.assertNotIn("InputPath", properties)
        self.assert_dead_letters_allowed(properties, "UnstartedUploadsQueue")

    def test_failed_executions_reach_write_metadata_as_raw_status_change_events(self):
        (rule,) = self.function("WriteMetadataFunction")["Events"].values()
        properties = rule["Properties"]
        self.assertEqual(
            properties["Pattern"],
            {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": "ImagePipeline"}]},
            },
        )
        self.assertNotIn("Input", properties)
        self.assert_dead_letters_allowed(properties, "UnrecordedFailuresQueue")

    def assert_dead_letters_allowed(self, rule_properties, queue):
        self.assertEqual(rule_properties["DeadLetterConfig"], {"Arn": {"Fn::GetAtt": [queue, "Arn"]}})
        rule_name = rule_properties["RuleName"]["Fn::Sub"]
        policy = self.resources[f"{queue}Policy"]["Properties"]["PolicyDocument"]
        (statement,) = policy["Statement"]
        source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
        self.assertTrue(source.endswith(f":rule/{rule_name}"), (source, rule_name))

    def test_the_bucket_sends_events_to_eventbridge(self):
        bucket = self.resources["ImageBucket"]["Properties"]
        self.assertEqual(bucket["NotificationConfiguration"], {"EventBridgeConfiguration": {"EventBridgeEnabled": True}})

    # ------------------------------------------------------------ API roles

    def test_the_api_can_only_put_uploads_and_get_items(self):
        for role, expected in (
            ("UploadApiRole", [(("s3:PutObject",), UPLOADS)]),
            ("ImageReadApiRole", [(("dynamodb:GetItem",), TABLE)]),
        ):
            with self.subTest(role=role):
                policies = [p["PolicyDocument"] for p in self.resources[role]["Properties"]["Policies"]]
                self.assertEqual(sorted(grants(policies), key=repr), normalised(expected))

    # ------------------------------------------------------------ suppressions

    def test_every_checkov_skip_says_why(self):
        for logical_id, resource in self.resources.items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                with self.subTest(resource=logical_id, check=skip.get("id")):
                    self.assertRegex(skip["id"], r"^CKV2?_AWS_\d+$")
                    self.assertGreater(len(skip.get("comment", "").split()), 8, "a reason, not a label")

    def test_cfn_lint_is_not_silenced(self):
        self.assertNotIn("cfn-lint", self.template.get("Metadata", {}))
        for logical_id, resource in self.resources.items():
            with self.subTest(resource=logical_id):
                self.assertNotIn("cfn-lint", resource.get("Metadata", {}))


if __name__ == "__main__":
    unittest.main()
