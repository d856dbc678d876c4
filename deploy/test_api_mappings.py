"""The REST API's mapping templates (VTL in template.yaml), rendered offline.

API Gateway's Velocity engine is not available here; airspeed (a Python implementation of
Velocity) renders the same template text, with `$input`, `$util` and `$context` implemented as
API Gateway documents them. The expected GET /images/{id} answers are derived from the stored
item by the contract's rule (camelCase names, DynamoDB types unwrapped, absent attributes
omitted), independently of the template.

Run: python -m unittest discover -s deploy -p 'test_*.py'
"""

import json
import re
import unittest

import airspeed
from openapi_spec_validator import validate as validate_openapi

import template_io

REQUEST_ID = "c0ffee00-1234-4abc-9def-0123456789ab"
TABLE_NAME = "stack-ImageMetadata-ABC123"


class ApiGatewayInput:
    """`$input`: the integration's response body (or the method request's parameters)."""

    STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")

    def __init__(self, body=None, path_parameters=None):
        self._body = body if body is not None else {}
        self._params = path_parameters or {}

    def path(self, expression):
        """The value at a JSONPath of the form $.a.b[0].c; None where there is none."""
        if not expression.startswith("$"):
            raise ValueError(f"unsupported JSONPath {expression!r}")
        value, position = self._body, 1
        while position < len(expression):
            step = self.STEP.match(expression, position)
            if step is None:
                raise ValueError(f"unsupported JSONPath {expression!r}")
            name, index = step.groups()
            if name is not None:
                value = value.get(name) if isinstance(value, dict) else None
            else:
                value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            position = step.end()
        return value

    def json(self, expression):
        return json.dumps(self.path(expression))

    def params(self, name):
        return self._params.get(name, "")


class ApiGatewayUtil:
    """`$util`: escapeJavaScript as API Gateway implements it (Apache Commons Lang's
    StringEscapeUtils.escapeJavaScript)."""

    SIMPLE_ESCAPES = {
        "'": "\\'",
        '"': '\\"',
        "\\": "\\\\",
        "/": "\\/",
        "\b": "\\b",
        "\n": "\\n",
        "\t": "\\t",
        "\f": "\\f",
        "\r": "\\r",
    }

    def escapeJavaScript(self, text):  # noqa: N802 - the VTL name
        out = []
        for char in text:
            if char in self.SIMPLE_ESCAPES:
                out.append(self.SIMPLE_ESCAPES[char])
            elif ord(char) < 32 or ord(char) > 0x7F:
                out.extend(f"\\u{unit:04X}" for unit in utf16_units(char))
            else:
                out.append(char)
        return "".join(out)


def utf16_units(char):
    encoded = char.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def render(template_text, body=None, path_parameters=None):
    """Renders a mapping template; returns (status override or None, output text)."""
    context = {"requestId": REQUEST_ID, "responseOverride": {}}
    namespace = {
        "input": ApiGatewayInput(body, path_parameters),
        "util": ApiGatewayUtil(),
        "context": context,
    }
    output = airspeed.Template(template_text).merge(namespace)
    return context["responseOverride"].get("status"), output


def select_response(responses, backend_status):
    """API Gateway's integration response selection for AWS integrations: the first
    non-default pattern that matches the backend's status code in full, else `default`."""
    for pattern, response in responses.items():
        if pattern != "default" and re.fullmatch(pattern, str(backend_status)):
            return response
    return responses["default"]


def respond(integration, backend_status, body=None):
    """The method response (status, JSON body) for a backend answer."""
    response = select_response(integration["responses"], backend_status)
    override, text = render(response["responseTemplates"]["application/json"], body)
    return int(override or response["statusCode"]), json.loads(text)


def unwrap(attribute):
    """A DynamoDB attribute value as plain JSON."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return json.loads(value)
    if kind == "BOOL":
        return value
    if kind == "M":
        return {name: unwrap(inner) for name, inner in value.items()}
    if kind == "L":
        return [unwrap(inner) for inner in value]
    raise ValueError(f"unexpected attribute type {kind}")


def camel(name):
    return "imageId" if name == "ImageID" else name[0].lower() + name[1:]


def expected_image_json(item):
    """The contract: top-level names in camelCase, the EXIF document as stored, rendition
    attributes in camelCase."""
    result = {}
    for name, attribute in item.items():
        if name == "Renditions":
            result["renditions"] = [
                {camel(field): unwrap(value) for field, value in rendition["M"].items()}
                for rendition in attribute["L"]
            ]
        else:
            result[camel(name)] = unwrap(attribute)
    return result


def resolve(value, take_true_branch):
    """The OpenAPI body as API Gateway would import it: intrinsic functions replaced by
    well-formed stand-ins, each Fn::If resolved to one branch."""
    if isinstance(value, list):
        return [resolve(item, take_true_branch) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return resolve(when_true if take_true_branch else when_false, take_true_branch)
    if set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
        return re.sub(r"\$\{[^}!]+\}", "stand-in", text)
    if set(value) == {"Fn::GetAtt"}:
        return f"arn:aws:iam::123456789012:role/{value['Fn::GetAtt'][0]}"
    if set(value) == {"Ref"}:
        return "stand-in"
    return {key: resolve(item, take_true_branch) for key, item in value.items()}


def s(text):
    return {"S": text}


def n(number):
    return {"N": str(number)}


def succeeded_item():
    return {
        "ImageID": s(REQUEST_ID),
        "Status": s("SUCCEEDED"),
        "Bucket": s("imgflow-bucket"),
        "Key": s(f"uploads/{REQUEST_ID}"),
        "VersionId": s("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
        "OriginalUrl": s(f"https://imgflow-bucket.s3.eu-west-1.amazonaws.com/uploads/{REQUEST_ID}"),
        "ContentType": s("image/jpeg"),
        "Format": s("jpeg"),
        "Bytes": n(4183920),
        "Width": n(4000),
        "Height": n(3000),
        "Sha256": s("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        "UploadedAt": s("2026-11-25T21:00:00.123Z"),
        "ProcessedAt": s("2026-11-25T21:00:02.456Z"),
        "Exif": {
            "M": {
                "make": s("Canon"),
                "model": s("Canon EOS 5D Mark IV"),
                "lensMake": s("Canon"),
                "lensModel": s("EF24-70mm f/2.8L II USM"),
                "dateTimeOriginal": s("2019-05-04T12:00:00+02:00"),
                "orientation": n(6),
                "exposureTime": s("1/125"),
                "fNumber": n(2.8),
                "iso": n(200),
                "focalLengthMm": n(35),
                "gps": {"M": {"latitude": n(48.858222), "longitude": n(-2.2945), "altitudeM": n(-12.5)}},
            }
        },
        "Warnings": {"L": [s("EXIF partly unreadable: tag 0x9286")]},
        "Renditions": {
            "L": [
                {
                    "M": {
                        "Name": s(name),
                        "Key": s(f"processed/{REQUEST_ID}/{name}.jpg"),
                        "Url": s(f"https://cdn.example.com/processed/{REQUEST_ID}/{name}.jpg"),
                        "Width": n(size),
                        "Height": n(size * 3 // 4),
                        "Bytes": n(size * 40),
                        "ContentType": s("image/jpeg"),
                    }
                }
                for name, size in (("thumb", 256), ("medium", 1280))
            ]
        },
        "ExecutionArn": s("arn:aws:states:eu-west-1:123456789012:execution:imgflow-image-pipeline:abc"),
    }


class MappingTemplates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        template = template_io.load_template()
        paths = template_io.api_definition(template)["paths"]
        cls.definition = template_io.api_definition(template)
        cls.upload = paths["/upload"]["post"]["x-amazon-apigateway-integration"]
        cls.get_image = paths["/images/{id}"]["get"]["x-amazon-apigateway-integration"]

    # ------------------------------------------------------------ POST /upload

    def test_upload_stores_the_body_under_uploads_with_the_request_id_and_content_type(self):
        uri_text = self.upload["uri"]["Fn::Sub"]
        self.assertTrue(uri_text.endswith(":s3:path/${ImageBucket}/uploads/{imageId}"), uri_text)
        self.assertEqual(self.upload["httpMethod"], "PUT")
        self.assertEqual(
            self.upload["requestParameters"],
            {
                "integration.request.path.imageId": "context.requestId",
                "integration.request.header.Content-Type": "method.request.header.Content-Type",
            },
        )
        self.assertNotIn("requestTemplates", self.upload, "a template would rewrite the binary body")

    def test_image_bodies_are_binary_media_types(self):
        binary = self.definition["x-amazon-apigateway-binary-media-types"]
        for media_type in ("image/jpeg", "image/png", "image/webp", "application/octet-stream"):
            self.assertIn(media_type, binary)

    def test_upload_answers_image_id_key_and_status_url(self):
        status, body = respond(self.upload, 200)
        self.assertEqual(status, 202)
        self.assertEqual(
            body,
            {"imageId": REQUEST_ID, "key": f"uploads/{REQUEST_ID}", "statusUrl": f"/images/{REQUEST_ID}"},
        )

    def test_upload_storage_errors_are_mapped(self):
        self.assertEqual(respond(self.upload, 403)[0], 500)
        self.assertEqual(respond(self.upload, 503)[0], 503)
        self.assertIn("message", respond(self.upload, 500)[1])

    # ------------------------------------------------------------ GET /images/{id}

    def get_item_request(self, image_id):
        text, variables = self.get_image["requestTemplates"]["application/json"]["Fn::Sub"]
        self.assertEqual(set(variables), {"Table"})
        _, rendered = render(text.replace("${Table}", TABLE_NAME), path_parameters={"id": image_id})
        return rendered

    def test_get_item_request_names_the_table_and_the_id(self):
        for image_id in (REQUEST_ID, "k-0123abcd", "\"quoted\" \\ / é 📷"):
            with self.subTest(image_id=image_id):
                self.assertEqual(
                    json.loads(self.get_item_request(image_id)),
                    {"TableName": TABLE_NAME, "Key": {"ImageID": {"S": image_id}}, "ConsistentRead": True},
                )

    def test_an_id_with_an_apostrophe_is_not_json_and_dynamodb_refuses_it(self):
        with self.assertRaises(json.JSONDecodeError):
            json.loads(self.get_item_request("it's"))
        serialization_error = {"__type": "com.amazon.coral.service#SerializationException"}
        self.assertEqual(respond(self.get_image, 400, serialization_error), (400, {"message": "invalid image id"}))

    def test_a_succeeded_item_is_answered_in_camel_case(self):
        item = succeeded_item()
        status, body = respond(self.get_image, 200, {"Item": item})
        self.assertEqual(status, 200)
        self.assertEqual(body, expected_image_json(item))
        self.assertEqual(body["exif"]["gps"], {"latitude": 48.858222, "longitude": -2.2945, "altitudeM": -12.5})
        self.assertEqual([r["name"] for r in body["renditions"]], ["thumb", "medium"])

    def test_a_failed_item_has_error_cause_and_state_and_omits_what_is_absent(self):
        item = {
            "ImageID": s("k-5d41402abc4b2a76b9719d911017c592"),
            "Status": s("FAILED"),
            "Bucket": s("imgflow-bucket"),
            "Key": s("uploads/holiday photo's.jpg"),
            "UploadedAt": s("2026-11-25T21:00:00Z"),
            "ProcessedAt": s("2026-11-25T21:05:00Z"),
            "ExecutionArn": s("arn:aws:states:eu-west-1:123456789012:execution:imgflow-image-pipeline:x"),
            "Error": s("TransientError"),
            "Cause": s('{"errorMessage":"S3 said \\"SlowDown\\"\nretry","trace":["a/b"]}'),
            "FailedState": s("Resize"),
        }
        status, body = respond(self.get_image, 200, {"Item": item})
        self.assertEqual(status, 200)
        self.assertEqual(body, expected_image_json(item))
        for absent in ("versionId", "exif", "renditions", "warnings", "width", "sha256"):
            self.assertNotIn(absent, body)

    def test_partial_exif_keeps_only_what_was_read(self):
        item = succeeded_item()
        item["Exif"] = {"M": {"iso": n(100), "gps": {"M": {"latitude": n(1.5), "longitude": n(2)}}}}
        del item["Renditions"]
        _, body = respond(self.get_image, 200, {"Item": item})
        self.assertEqual(body, expected_image_json(item))

    def test_a_missing_item_is_404(self):
        self.assertEqual(respond(self.get_image, 200, {}), (404, {"message": "image not found"}))

    def test_dynamodb_errors_are_told_apart(self):
        def error(kind):
            return {"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": "..."}

        self.assertEqual(respond(self.get_image, 400, error("ValidationException"))[0], 400)
        self.assertEqual(respond(self.get_image, 400, error("ThrottlingException"))[0], 503)
        self.assertEqual(respond(self.get_image, 400, error("ProvisionedThroughputExceededException"))[0], 503)
        self.assertEqual(respond(self.get_image, 400, error("AccessDeniedException"))[0], 500)
        self.assertEqual(respond(self.get_image, 500, {})[0], 503)

    # ------------------------------------------------------------ both routes

    def test_the_body_is_valid_openapi_with_and_without_api_keys(self):
        for keys_on in (True, False):
            with self.subTest(api_key_required=keys_on):
                validate_openapi(resolve(self.definition, keys_on))

    def test_every_status_an_integration_answers_is_a_declared_method_response(self):
        for path, methods in self.definition["paths"].items():
            for method, operation in methods.items():
                declared = set(operation["responses"])
                for response in operation["x-amazon-apigateway-integration"]["responses"].values():
                    with self.subTest(path=path, method=method, status=response["statusCode"]):
                        self.assertIn(response["statusCode"], declared)
                        for template_text in response.get("responseTemplates", {}).values():
                            for override in re.findall(r"responseOverride\.status = (\d+)", template_text):
                                self.assertIn(override, declared)

    def test_both_routes_require_the_api_key_when_the_parameter_says_so(self):
        for path, method in (("/upload", "post"), ("/images/{id}", "get")):
            condition, required, optional = self.definition["paths"][path][method]["security"]["Fn::If"]
            self.assertEqual(condition, "UseApiKey")
            self.assertEqual(required, [{"api_key": []}])
            self.assertEqual(optional, [])
        scheme = self.definition["components"]["securitySchemes"]["api_key"]
        self.assertEqual((scheme["type"], scheme["name"], scheme["in"]), ("apiKey", "x-api-key", "header"))


if __name__ == "__main__":
    unittest.main()
