"""The state machine as the template deploys it: the file, its substitutions, and the
Retry/Catch design of docs/architecture (shared design §2) in AWS's terms.

Run: python -m unittest discover -s deploy -p 'test_*.py'
"""

import re
import unittest

import template_io

# The contract between the ASL file and the template: placeholder -> (function, binary).
FUNCTIONS = {
    "ValidateFunctionArn": ("ValidateFunction", "validate"),
    "ReadExifFunctionArn": ("ReadExifFunction", "read-exif"),
    "ResizeFunctionArn": ("ResizeFunction", "resize"),
    "WriteMetadataFunctionArn": ("WriteMetadataFunction", "write-metadata"),
}
PERMANENT_ERRORS = {"InvalidImage", "UnsupportedFormat", "ImageTooLarge", "ObjectNotFound"}
# What a direct Lambda Task raises when the Lambda service, not the function, fails.
LAMBDA_TRANSIENT_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
STEP_ERRORS = PERMANENT_ERRORS | {"TransientError", "InvalidInput", "InternalError"}
# Error names Step Functions itself raises, and the Lambda ones of AWS's documentation.
AWS_ERRORS = LAMBDA_TRANSIENT_ERRORS | {
    "Lambda.Unknown",
    "Lambda.ClientExecutionTimeoutException",
    "States.ALL",
    "States.Timeout",
    "States.TaskFailed",
    "States.Permissions",
    "States.HeartbeatTimeout",
    "States.Runtime",
    "States.DataLimitExceeded",
    "States.ResultPathMatchFailure",
    "States.ParameterPathFailure",
    "States.IntrinsicFailure",
    "States.BranchFailed",
    "States.NoChoiceMatched",
    "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed",
    "States.ResultWriterFailed",
    "States.QueryEvaluationError",
}
# Catching any of these would turn a transient failure into a terminal state, and a redrive
# would then fail again at that terminal state instead of resuming at the Task.
NOT_TO_BE_CAUGHT = LAMBDA_TRANSIENT_ERRORS | {"TransientError", "States.ALL", "States.TaskFailed", "States.Timeout"}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def all_states(states):
    """Every state, including those inside Parallel branches and Map iterators."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from all_states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor["States"])


class StateMachineDeployment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = template_io.load_template()
        cls.properties = template_io.state_machine_properties(cls.template)
        cls.definition_text = template_io.definition_path(cls.template).read_text()
        cls.definition = template_io.load_definition(cls.template)
        cls.states = dict(all_states(cls.definition["States"]))
        cls.tasks = {name: state for name, state in cls.states.items() if state["Type"] == "Task"}

    def test_the_template_deploys_the_shared_asl_file_as_a_standard_state_machine(self):
        self.assertEqual(self.properties["DefinitionUri"], "statemachine/image-pipeline.asl.json")
        self.assertEqual(self.properties["Type"], "STANDARD")

    def test_every_placeholder_is_substituted_and_every_substitution_is_used(self):
        placeholders = set(PLACEHOLDER.findall(self.definition_text))
        self.assertEqual(placeholders, set(FUNCTIONS))
        self.assertEqual(set(self.properties["DefinitionSubstitutions"]), placeholders)

    def test_each_placeholder_is_the_arn_of_the_function_built_from_its_binary(self):
        resources = self.template["Resources"]
        for placeholder, (function, binary) in FUNCTIONS.items():
            with self.subTest(placeholder=placeholder):
                self.assertEqual(
                    self.properties["DefinitionSubstitutions"][placeholder], {"Fn::GetAtt": [function, "Arn"]}
                )
                metadata = resources[function]["Metadata"]
                self.assertEqual(metadata["BuildMethod"], "makefile")
                self.assertEqual(template_io.built_binaries().get(function), binary)

    def test_tasks_call_functions_directly_and_never_read_an_invoke_envelope(self):
        self.assertTrue(self.tasks)
        for name, task in self.tasks.items():
            with self.subTest(task=name):
                self.assertRegex(task["Resource"], r"^\$\{[A-Za-z]+FunctionArn\}$")
        # A bare payload has no Payload/StatusCode wrapper to select from.
        self.assertNotIn("lambda:invoke", self.definition_text)
        self.assertNotRegex(self.definition_text, r"\$\.Payload\b")

    def test_every_task_retries_transient_errors_with_capped_jittered_backoff(self):
        for name, task in self.tasks.items():
            with self.subTest(task=name):
                retriers = [r for r in task.get("Retry", []) if "TransientError" in r["ErrorEquals"]]
                self.assertEqual(len(retriers), 1, "one retrier for TransientError")
                retrier = retriers[0]
                self.assertLessEqual(LAMBDA_TRANSIENT_ERRORS, set(retrier["ErrorEquals"]))
                self.assertGreater(retrier.get("MaxAttempts", 3), 1)
                self.assertGreater(retrier.get("BackoffRate", 2.0), 1.0)
                self.assertIn("MaxDelaySeconds", retrier)
                self.assertEqual(retrier.get("JitterStrategy"), "FULL")

    def test_permanent_errors_are_never_retried(self):
        for name, state in self.states.items():
            for retrier in state.get("Retry", []):
                with self.subTest(state=name, retrier=retrier["ErrorEquals"]):
                    self.assertFalse(PERMANENT_ERRORS & set(retrier["ErrorEquals"]))
                    self.assertNotIn("States.ALL", retrier["ErrorEquals"])

    def test_permanent_errors_of_validate_are_caught_into_the_rejection_path(self):
        catchers = self.states["Validate"].get("Catch", [])
        caught = {error for catcher in catchers for error in catcher["ErrorEquals"]}
        self.assertLessEqual(PERMANENT_ERRORS, caught)

    def test_transient_failures_are_left_uncaught_so_that_a_redrive_resumes_at_the_task(self):
        for name, state in self.states.items():
            for catcher in state.get("Catch", []):
                with self.subTest(state=name, catcher=catcher["ErrorEquals"]):
                    self.assertFalse(NOT_TO_BE_CAUGHT & set(catcher["ErrorEquals"]))

    def test_every_error_name_is_a_step_error_or_one_aws_raises(self):
        for name, state in self.states.items():
            for handler in state.get("Retry", []) + state.get("Catch", []):
                with self.subTest(state=name, errors=handler["ErrorEquals"]):
                    self.assertLessEqual(set(handler["ErrorEquals"]), STEP_ERRORS | AWS_ERRORS)

    def test_functions_time_out_before_the_states_that_call_them(self):
        resources = self.template["Resources"]
        by_placeholder = {f"${{{placeholder}}}": function for placeholder, (function, _) in FUNCTIONS.items()}
        for name, task in self.tasks.items():
            with self.subTest(task=name):
                function = resources[by_placeholder[task["Resource"]]]["Properties"]
                self.assertIn("TimeoutSeconds", task)
                self.assertLess(function["Timeout"], task["TimeoutSeconds"])


if __name__ == "__main__":
    unittest.main()
