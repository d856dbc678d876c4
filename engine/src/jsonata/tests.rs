use super::*;
use serde_json::json;

/// `$states` with `input` as the state input and a small context object.
fn states(input: Value) -> Value {
    json!({"input": input, "context": {"Execution": {"Name": "exec-1"}, "State": {"Name": "S"}}})
}

fn evaluate_with(expression: &str, input: Value, variables: Value) -> Result<Option<Value>, JsonataError> {
    let states = states(input);
    let Value::Object(variables) = variables else {
        panic!("variables must be an object");
    };
    evaluate(expression, &Bindings { states: &states, variables: &variables })
}

/// The defined result of `expression` over an empty input and no variables.
fn value_of(expression: &str) -> Value {
    evaluate_with(expression, json!({}), json!({}))
        .unwrap_or_else(|error| panic!("{expression} failed: {}", error.message))
        .unwrap_or_else(|| panic!("{expression} is undefined"))
}

fn is_undefined(expression: &str) -> bool {
    evaluate_with(expression, json!({}), json!({}))
        .unwrap_or_else(|error| panic!("{expression} failed: {}", error.message))
        .is_none()
}

/// The message of the error `expression` raises.
fn error_of(expression: &str) -> String {
    let error = evaluate_with(expression, json!({}), json!({})).expect_err(&format!("{expression} should fail"));
    assert_eq!(error.error, QUERY_EVALUATION_ERROR);
    error.message
}

fn field_with(field: &str, template: Value, input: Value) -> Result<Value, JsonataError> {
    let states = states(input);
    evaluate_field(field, &template, &Bindings { states: &states, variables: &Map::new() })
}

#[test]
fn expression_strings_are_exactly_delimited() {
    assert!(is_expression("{% $states.input %}"));
    assert!(is_expression("{%1%}"));
    assert!(!is_expression(" {% states.input %} "));
    assert!(!is_expression("{% states.input %} "));
    assert!(!is_expression("$states.input"));
    assert!(!is_expression("{%}"));
    assert!(!is_expression("States.Format('Format:{}', 101)"));
}

#[test]
fn syntax_errors_read_as_aws_validation_reports_them() {
    assert_eq!(check_syntax("{% $states.input.a + 1 %}"), Ok(()));
    let invalid = |expression: &str| {
        let error = check_syntax(&format!("{{%{expression}%}}")).unwrap_err();
        assert_eq!(error.error, INVALID_JSONATA_EXPRESSION, "{expression}");
        error.message
    };
    assert_eq!(invalid(" 1 + "), "Unexpected end of expression");
    assert_eq!(invalid(""), "Unexpected end of expression");
    assert_eq!(invalid(" $x := "), "Unexpected end of expression");
    assert_eq!(invalid(" $states.input.a[1,2) "), "Expected \"]\", got \",\"");
    assert_eq!(invalid(" ($states.input "), "Expected \")\" before end of expression");
    assert_eq!(invalid(" {\"a\":} "), "The symbol \"}\" cannot be used as a unary operator");
    assert_eq!(invalid(" \"unterminated "), "String literal must be terminated by a matching quote");
    assert_eq!(invalid(" $states.input.a bar "), "Syntax error: \"bar\"");
    assert!(check_syntax("$states.input").is_err());
}

#[test]
fn references_without_a_context_are_refused() {
    let refused = |expression: &str| {
        let error = check_syntax(&format!("{{% {expression} %}}")).unwrap_err();
        assert_eq!(error.error, UNSUPPORTED_JSONATA_EXPRESSION, "{expression}");
        error.message
    };
    assert_eq!(refused("phone"), "Reference to 'phone' at the top level is not supported.");
    assert_eq!(refused("$"), "Reference to '$' at the top level is not supported.");
    assert_eq!(refused("$.a"), "Reference to '$' at the top level is not supported.");
    assert_eq!(refused("$$"), "Reference to '$$' is not supported.");
    assert_eq!(refused("{aaa: 1}"), "Reference to 'aaa' at the top level is not supported.");
    assert_eq!(
        refused("$map($states.input.a, function($x) { b })"),
        "Reference to 'b' at the top level is not supported."
    );
    assert_eq!(refused("$x := phone"), "Reference to 'phone' at the top level is not supported.");
    assert_eq!(refused("1 + a.b"), "Reference to 'a' at the top level is not supported.");
    for accepted in [
        "$states.input.items[price > 5].name",
        "$states.input.items^(price).name",
        "$states.input.items{kind: $count(id)}",
        "$x := 1",
        "$undefinedVariable",
        "{'key': $states.input.a}",
        "$states.input.a ? 'yes' : 'no'",
        "$map($states.input.a, function($x) { $x.b })",
    ] {
        assert_eq!(check_syntax(&format!("{{% {accepted} %}}")), Ok(()), "{accepted}");
    }
}

#[test]
fn states_fields_are_checked_against_where_the_expression_is() {
    let everywhere = ["input", "context"];
    assert_eq!(check_states_fields("{% $states.input.a & $states.context.x %}", &everywhere), Ok(()));
    let error = check_states_fields("{% $states.errorOutput.Cause %}", &everywhere).unwrap_err();
    assert_eq!(error.error, UNSUPPORTED_JSONATA_EXPRESSION);
    assert_eq!(error.message, "Field '$states.errorOutput' does not exist.");
    let error = check_states_fields("{% $map([1], function($v) { $states.result }) %}", &everywhere).unwrap_err();
    assert_eq!(error.message, "Field '$states.result' does not exist.");
    assert_eq!(check_states_fields("{% $states.errorOutput %}", &["input", "context", "errorOutput"]), Ok(()));
    assert_eq!(check_states_fields("{% $states %}", &everywhere), Ok(()));
}

#[test]
fn states_input_context_and_variables_are_bound() {
    let input = json!({"input_value": "string literal", "input_values": [1, 2, 3]});
    let variables = json!({"var_input_value": "from variable", "var_constant_1": 1});
    let result = |expression| evaluate_with(expression, input.clone(), variables.clone()).unwrap().unwrap();
    assert_eq!(result("{% $states.input %}"), input);
    assert_eq!(result("{% $var_input_value %}"), json!("from variable"));
    assert_eq!(result("{% $sum($states.input.input_values) + $var_constant_1 %}"), json!(7));
    assert_eq!(result("{% $states.context.Execution.Name %}"), json!("exec-1"));
}

#[test]
fn states_is_reserved_over_a_variable_of_that_name() {
    let result =
        evaluate_with("{% $states.input.a %}", json!({"a": "input"}), json!({"states": {"input": {"a": "variable"}}}));
    assert_eq!(result, Ok(Some(json!("input"))));
}

#[test]
fn dollar_alone_is_undefined() {
    assert!(is_undefined("{% $ %}"));
}

#[test]
fn integral_numbers_print_as_integers() {
    assert_eq!(value_of("{% 10 / 2 %}").to_string(), "5");
    assert_eq!(value_of("{% 2.0 %}").to_string(), "2");
    assert_eq!(value_of("{% [1.0, 2.5] %}").to_string(), "[1,2.5]");
    assert_eq!(value_of("{% 1 / 4 %}"), json!(0.25));
    assert_eq!(value_of("{% -3 %}"), json!(-3));
    assert_eq!(value_of("{% 0.1 + 0.2 %}"), json!(0.30000000000000004));
}

#[test]
fn results_of_every_json_type() {
    assert_eq!(value_of("{% null %}"), Value::Null);
    assert_eq!(value_of("{% true %}"), json!(true));
    assert_eq!(value_of("{% 'text' %}"), json!("text"));
    assert_eq!(value_of("{% [] %}"), json!([]));
    assert_eq!(value_of("{% {} %}"), json!({}));
    assert_eq!(value_of("{% {'a': [1, {'b': null}]} %}"), json!({"a": [1, {"b": null}]}));
}

#[test]
fn undefined_inside_a_constructor_is_left_out() {
    assert_eq!(value_of("{% {'a': $nothing, 'b': 1} %}"), json!({"b": 1}));
    assert_eq!(value_of("{% [1, $nothing, 2] %}"), json!([1, 2]));
}

#[test]
fn a_function_result_is_refused() {
    let error = field_with("Output", json!("{% function($x) { $x } %}"), json!({})).unwrap_err();
    assert_eq!(
        error.message,
        "The JSONata expression 'function($x) { $x }' specified for the field 'Output' returned an unsupported result type."
    );
}

#[test]
fn an_undefined_field_fails_naming_the_field() {
    let error = field_with("Output", json!("{% $doesNotExist %}"), json!({})).unwrap_err();
    assert_eq!(error.error, QUERY_EVALUATION_ERROR);
    assert_eq!(
        error.message,
        "The JSONata expression '$doesNotExist' specified for the field 'Output' returned nothing (undefined)."
    );
    let error = field_with("Output", json!({"ok": 1, "result": "{% $doesNotExist %}"}), json!({})).unwrap_err();
    assert_eq!(
        error.message,
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined)."
    );
    let error = field_with("Arguments", json!({"Payload": {"list": [1, "{%   $states.input.missing  %}"]}}), json!({}))
        .unwrap_err();
    assert_eq!(
        error.message,
        "The JSONata expression '$states.input.missing' specified for the field 'Arguments/Payload/list[1]' returned nothing (undefined)."
    );
}

#[test]
fn a_template_without_a_field_name_names_the_inner_path() {
    let states = states(json!({}));
    let bindings = Bindings { states: &states, variables: &Map::new() };
    let error = evaluate_template(&json!({"result": "{% $x %}"}), &bindings).unwrap_err();
    assert_eq!(
        error.message,
        "The JSONata expression '$x' specified for the field 'result' returned nothing (undefined)."
    );
    let error = evaluate_template(&json!("{% $x %}"), &bindings).unwrap_err();
    assert_eq!(error.message, "The JSONata expression '$x' returned nothing (undefined).");
}

#[test]
fn templates_keep_literals_and_evaluate_expressions() {
    let template = json!({
        "constant_null": null,
        "constant_int": 0,
        "constant_float": 0.1,
        "constant_str": "constant string",
        "constant_not_jsonata": " {% states.input %} ",
        "constant_varpath": "$states.input",
        "constant_jp_input.$": "$",
        "constant_if": "States.Format('Format:{}', 101)",
        "list": [null, 0, " {% states.input %} ", "{% $states.input.v %}", {"nested": "{% $states.input.v + 1 %}"}],
        "whole": "{% $states.input %}"
    });
    let result = field_with("Output", template.clone(), json!({"v": 41})).unwrap();
    let mut expected = template;
    expected["list"][3] = json!(41);
    expected["list"][4]["nested"] = json!(42);
    expected["whole"] = json!({"v": 41});
    assert_eq!(result, expected);
    assert_eq!(field_with("Output", json!(0), json!({})), Ok(json!(0)));
    assert_eq!(field_with("Output", Value::Null, json!({})), Ok(Value::Null));
}

#[test]
fn evaluation_errors_carry_the_jsonata_code_after_the_aws_sentence() {
    let error = field_with("Output", json!({"r": "{% $abs('x') %}"}), json!({})).unwrap_err();
    assert_eq!(error.error, QUERY_EVALUATION_ERROR);
    assert_eq!(
        error.message,
        "The JSONata expression '$abs('x')' specified for the field 'Output/r' threw an error during evaluation. T0410: Argument 1 of function \"abs\" does not match function signature"
    );
    assert!(error_of("{% 2 > '1' %}").starts_with("T2009"));
}

#[test]
fn a_panic_in_the_library_fails_the_expression() {
    let outcome: Result<(), Failure> = contain_panics(|| panic!("a bug in the evaluator"));
    let cause = outcome.unwrap_err().cause("The JSONata expression 'x' specified for the field 'Output'");
    let (sentence, id) = cause.rsplit_once(' ').unwrap();
    assert_eq!(
        sentence,
        "The JSONata expression 'x' specified for the field 'Output' threw an internal error during evaluation."
    );
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(contain_panics(|| Ok::<_, Failure>(7)).unwrap(), 7);
}

#[test]
fn a_message_without_a_code_follows_a_colon() {
    let sentence = "The JSONata expression 'x' specified for the field 'Output'";
    assert_eq!(
        Failure::Evaluation("D3137: boom".to_owned()).cause(sentence),
        "The JSONata expression 'x' specified for the field 'Output' threw an error during evaluation. D3137: boom"
    );
    assert_eq!(
        Failure::Evaluation("Expression evaluation timeout".to_owned()).cause(sentence),
        "The JSONata expression 'x' specified for the field 'Output' threw an error during evaluation: Expression evaluation timeout"
    );
}

#[test]
fn error_and_assert_raise_query_evaluation_errors() {
    assert_eq!(error_of("{% $error('boom') %}"), "D3137: boom");
    assert!(error_of("{% $assert(false, 'bad') %}").ends_with("bad"));
}

#[test]
fn eval_is_not_available() {
    assert_eq!(error_of("{% $eval('1 + 1') %}"), "T1006: Attempted to invoke a non-function");
}

#[test]
fn unexpected_type_errors_read_as_aws_writes_them() {
    let error = unexpected_type_error("Items", "{% 1 %}", "array", &json!(1));
    assert_eq!(error.error, QUERY_EVALUATION_ERROR);
    assert_eq!(
        error.message,
        "The JSONata expression '1' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'number' for value: 1"
    );
    let error = unexpected_type_error("Items", "{% $ItemsVar %}", "array", &json!({"a": "b"}));
    assert!(error.message.ends_with("Expected 'array', but was 'object' for value: {\"a\":\"b\"}"));
}

/// Expressions the AWS-recorded conformance cases use, with the values AWS returned.
#[test]
fn expressions_from_aws_recorded_executions() {
    let input = json!({"type": "Private", "value": 22, "result": {"done": false}});
    let result = |expression| evaluate_with(expression, input.clone(), json!({})).unwrap().unwrap();
    assert_eq!(result("{% $not($states.input.type = 'Private') %}"), json!(false));
    assert_eq!(result("{% $states.input.value = 0 %}"), json!(false));
    assert_eq!(result("{% $states.input.value >= 20 and $states.input.value < 30 %}"), json!(true));
    assert_eq!(result("{% $states.input.result.done %}"), json!(false));
    assert_eq!(result("{% $not($states.input.result.done) %}"), json!(true));
    assert_eq!(value_of("{% $contains(\"hello$world\", /^hello\\$/) %}"), json!(true));
    assert_eq!(value_of("{% $number(\"2\") %}"), json!(2));
    assert_eq!(value_of("{% $variable := 1 %}"), json!(1));
    assert_eq!(value_of("{% [0] %}"), json!([0]));
    assert_eq!(
        evaluate_with(
            "{% $merge([$states.input.part1, $states.input.part2]) %}",
            json!({"part1": {"hello": "world"}, "part2": {"foo": "bar"}}),
            json!({})
        ),
        Ok(Some(json!({"hello": "world", "foo": "bar"})))
    );
}

#[test]
fn partition_cuts_arrays_into_chunks() {
    assert_eq!(value_of("{% $partition([0, 1, 2, 3], 2) %}"), json!([[0, 1], [2, 3]]));
    assert_eq!(value_of("{% $partition([0, 1, 2, 3], 1) %}"), json!([[0], [1], [2], [3]]));
    assert_eq!(
        value_of("{% $partition([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3) %}"),
        json!([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]])
    );
    assert_eq!(value_of("{% $partition([1, 2], 5) %}"), json!([[1, 2]]));
    assert_eq!(value_of("{% $partition([1, 2, 3], 2.9) %}"), json!([[1, 2], [3]]));
    assert_eq!(value_of("{% $partition([1, 2]) %}"), json!([[1, 2]]));
    assert!(is_undefined("{% $partition([], 2) %}"));
    assert!(is_undefined("{% $partition($nothing, 2) %}"));
    assert!(is_undefined("{% $partition([1], 0) %}"));
    assert!(is_undefined("{% $partition([1], -0.5) %}"));
    assert_eq!(error_of("{% $partition([1], -2) %}"), "D3137: Second argument must be zero or greater");
    assert_eq!(
        error_of("{% $partition('abc', 2) %}"),
        "T0412: Argument 1 of function \"partition\" must be an array of undefined"
    );
    assert_eq!(
        error_of("{% $partition([1], 'x') %}"),
        "T0410: Argument 2 of function \"partition\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $partition([1], 1, 1) %}"),
        "T0410: Argument 3 of function \"partition\" does not match function signature"
    );
}

#[test]
fn range_counts_by_step_inclusive_of_end() {
    assert_eq!(value_of("{% $range(1, 9, 2) %}"), json!([1, 3, 5, 7, 9]));
    assert_eq!(value_of("{% $range(0, 10, 2) %}"), json!([0, 2, 4, 6, 8, 10]));
    assert_eq!(value_of("{% $range(1, 8, 2) %}"), json!([1, 3, 5, 7]));
    assert_eq!(value_of("{% $range(9, 1, -2) %}"), json!([9, 7, 5, 3, 1]));
    assert_eq!(value_of("{% $range(-1.2, 2.8, 1.9) %}"), json!([-1, 0, 1, 2]));
    assert_eq!(value_of("{% $range(3, 3, 1) %}"), json!(3));
    assert!(is_undefined("{% $range(1, 3, 0) %}"));
    assert!(is_undefined("{% $range(1, 3, -1) %}"));
    assert!(is_undefined("{% $range(3, 1, 1) %}"));
    assert!(is_undefined("{% $range(1, 3) %}"));
    assert_eq!(value_of("{% $count($range(0, 999, 1)) %}"), json!(1000));
    assert_eq!(
        error_of("{% $range('0', 4, 1) %}"),
        "T0410: Argument 1 of function \"range\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $range(0, $nothing, 1) %}"),
        "T0410: Argument 2 of function \"range\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $range(0, 4, true) %}"),
        "T0410: Argument 3 of function \"range\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $range(0, 4, 1, 2) %}"),
        "T0410: Argument 4 of function \"range\" does not match function signature"
    );
    assert!(error_of("{% $range(0, 100000000, 1) %}").starts_with("D2014"));
}

#[test]
fn hash_supports_the_five_algorithms() {
    let digest = |algorithm: &str| value_of(&format!("{{% $hash('input data', '{algorithm}') %}}"));
    assert_eq!(digest("MD5"), json!("812f45842bc6d66ee14572ce20db8e86"));
    assert_eq!(digest("SHA-1"), json!("aaff4a450a104cd177d28d18d74485e8cae074b7"));
    assert_eq!(digest("SHA-256"), json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"));
    assert_eq!(
        digest("SHA-384"),
        json!("d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562")
    );
    assert_eq!(
        digest("SHA-512"),
        json!(
            "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4"
        )
    );
    assert_eq!(
        value_of("{% $hash('', 'SHA-256') %}"),
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert!(is_undefined("{% $hash('x') %}"));
    assert_eq!(
        error_of("{% $hash('x', 'sha-256') %}"),
        "D3137: Hash algorithm 'sha-256' must be one of SHA-1, SHA-384, SHA-256, SHA-512, MD5"
    );
    assert_eq!(
        error_of("{% $hash(1, 'MD5') %}"),
        "T0410: Argument 1 of function \"hash\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $hash('x', 5) %}"),
        "T0410: Argument 2 of function \"hash\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $hash('x', 'MD5', 1) %}"),
        "T0410: Argument 3 of function \"hash\" does not match function signature"
    );
}

#[test]
fn random_is_in_the_unit_interval_and_reproducible_with_a_seed() {
    for _ in 0..100 {
        let n = value_of("{% $random() %}").as_f64().unwrap();
        assert!((0.0..1.0).contains(&n), "{n}");
    }
    assert_eq!(value_of("{% $random(42) %}"), json!(0.7275636800328681));
    assert_eq!(value_of("{% $random(42.9) %}"), json!(0.7275636800328681));
    assert_eq!(value_of("{% $random(0) %}"), json!(0.730967787376657));
    assert_eq!(value_of("{% $random(-1) %}"), value_of("{% $random(-1) %}"));
    assert_eq!(
        error_of("{% $random('seed') %}"),
        "T0410: Argument 1 of function \"random\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $random(1, 2) %}"),
        "T0410: Argument 2 of function \"random\" does not match function signature"
    );
}

#[test]
fn uuid_is_a_fresh_version_4_uuid() {
    let first = value_of("{% $uuid() %}");
    let second = value_of("{% $uuid() %}");
    assert_ne!(first, second);
    let parsed = uuid::Uuid::parse_str(first.as_str().unwrap()).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(error_of("{% $uuid(1) %}"), "T0410: Argument 1 of function \"uuid\" does not match function signature");
}

#[test]
fn parse_reads_one_json_value() {
    assert_eq!(
        evaluate_with(
            "{% $parse($states.input.FunctionInput) %}",
            json!({"FunctionInput": "{\"Arg1\": 1, \"Arg2\": []}"}),
            json!({})
        ),
        Ok(Some(json!({"Arg1": 1, "Arg2": []})))
    );
    assert_eq!(value_of("{% $parse('[1, 2, \"HelloWorld\"]') %}"), json!([1, 2, "HelloWorld"]));
    assert_eq!(value_of("{% $parse('null') %}"), Value::Null);
    assert_eq!(value_of("{% $parse('{\"a\": {\"b\": 1}}').a.b %}"), json!(1));
    assert!(is_undefined("{% $parse($nothing) %}"));
    for invalid in ["", "  ", "{", "[1] [2]", "{\"a\": 1, \"a\": 2}", "'single'", "1e999"] {
        let expression = format!("{{% $parse({}) %}}", serde_json::to_string(invalid).unwrap());
        assert_eq!(error_of(&expression), "D3137: Invalid JSON", "{invalid:?}");
    }
    assert_eq!(
        error_of("{% $parse(1) %}"),
        "T0410: Argument 1 of function \"parse\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $parse('1', 2) %}"),
        "T0410: Argument 2 of function \"parse\" does not match function signature"
    );
}

#[test]
fn standard_functions_missing_from_other_rust_ports_work() {
    assert_eq!(value_of("{% $average([1, 2, 3, 4]) %}"), json!(2.5));
    assert_eq!(value_of("{% $type({}) %}"), json!("object"));
    assert_eq!(value_of("{% $formatNumber(1234.5678, '#,##0.00') %}"), json!("1,234.57"));
    assert_eq!(value_of("{% $formatBase(255, 16) %}"), json!("ff"));
    assert_eq!(value_of("{% $formatInteger(1999, 'I') %}"), json!("MCMXCIX"));
    assert_eq!(value_of("{% $parseInteger('MCMXCIX', 'I') %}"), json!(1999));
    assert_eq!(value_of("{% $spread({'a': 1, 'b': 2}) %}"), json!([{"a": 1}, {"b": 2}]));
    assert_eq!(value_of("{% $sift({'a': 1, 'b': 2}, function($v) { $v > 1 }) %}"), json!({"b": 2}));
    assert_eq!(value_of("{% $encodeUrlComponent('a b&c') %}"), json!("a%20b%26c"));
    assert_eq!(value_of("{% $string(1e20) %}"), json!("100000000000000000000"));
    assert_eq!(value_of("{% $string(1e21) %}"), json!("1e+21"));
}

#[test]
fn runaway_recursion_fails_instead_of_hanging() {
    let message = error_of("{% ($f := function($n) { $f($n + 1) }; $f(0)) %}");
    assert!(message.starts_with('D') || message.starts_with('U'), "{message}");
}

#[test]
fn messages_are_reworded_as_jsonata_js_words_them() {
    assert_eq!(error_of("{% $foo() %}"), "T1006: Attempted to invoke a non-function");
    assert_eq!(error_of("{% $number('abc') %}"), "D3030: Unable to cast value to a number: \"abc\"");
    assert_eq!(error_of("{% $abs('x') %}"), "T0410: Argument 1 of function \"abs\" does not match function signature");
    assert_eq!(
        error_of("{% $states.input.a & $uppercase(1) %}"),
        "T0410: Argument 1 of function \"uppercase\" does not match function signature"
    );
    assert_eq!(
        error_of("{% $count(1, 2) %}"),
        "T0410: Argument 2 of function \"count\" does not match function signature"
    );
    assert_eq!(error_of("{% $sum(['a']) %}"), "T0412: Argument 1 of function \"sum\" must be an array of \"numbers\"");
    assert_eq!(error_of("{% 'a' - 1 %}"), "T2001: The left side of the \"-\" operator must evaluate to a number");
    assert_eq!(error_of("{% 1 * {} %}"), "T2002: The right side of the \"*\" operator must evaluate to a number");
    assert_eq!(
        error_of("{% ['a'..2] %}"),
        "T2003: The left side of the range operator (..) must evaluate to an integer"
    );
    assert_eq!(
        error_of("{% [1..2.5] %}"),
        "T2004: The right side of the range operator (..) must evaluate to an integer"
    );
    assert_eq!(
        error_of("{% $single([1, 2]) %}"),
        "D3138: The $single() function expected exactly 1 matching result.  Instead it matched more."
    );
    // Two functions: which one failed is not known, so jsonata-core's text stays.
    assert!(error_of("{% $abs($round('x')) %}").starts_with("T0410: Argument 1 "));
}

#[test]
fn non_finite_numbers_are_written_as_their_javascript_names() {
    assert_eq!(value_of("{% 1 / 0 %}"), json!("Infinity"));
    assert_eq!(value_of("{% -1 / 0 %}"), json!("-Infinity"));
    assert_eq!(value_of("{% [1 / 0] %}"), json!(["Infinity"]));
}

#[test]
fn reads_name_the_variables_and_states_fields_written() {
    let reads = |expression: &str| syntax::reads(&parsed(expression).unwrap().ast);
    let found = reads("$a + $sum($states.input.items[price > $limit].price) + $states.context.x");
    assert_eq!(found.variables, ["a", "limit"]);
    assert_eq!(found.states_fields, ["input", "context"]);
    assert!(!found.whole_states);
    assert!(reads("$keys($states)").whole_states);
    assert!(reads("($s := $states; $s.input)").whole_states);
    assert!(reads("$states.*").whole_states);
    // A called function is not a variable read.
    assert_eq!(reads("$map($list, function($v) { $v })").variables, ["list", "v"]);
}

#[test]
fn expressions_see_all_of_states_and_every_variable_they_name() {
    let input = json!({"a": 1});
    let variables = json!({"v": 100, "limit": 2, "unused": {"big": [1, 2, 3]}});
    let result = |expression| evaluate_with(expression, input.clone(), variables.clone()).unwrap().unwrap();
    assert_eq!(result("{% $keys($states) %}"), json!(["input", "context"]));
    assert_eq!(result("{% $lookup($states, 'input') %}"), json!({"a": 1}));
    assert_eq!(result("{% $map([1, 2], function($v) { $v * $limit }) %}"), json!([2, 4]));
    assert_eq!(result("{% $v + $states.input.a %}"), json!(101));
    assert_eq!(result("{% $states.context.Execution.Name & '/' & $states.input.a %}"), json!("exec-1/1"));
    assert!(evaluate_with("{% $states.result %}", input.clone(), variables.clone()).unwrap().is_none());
}

#[test]
fn a_field_converts_each_binding_once_for_all_its_expressions() {
    let states = states(json!({"a": 1, "b": 2}));
    let variables = Map::from_iter([("x".to_owned(), json!(10))]);
    let bindings = Bindings { states: &states, variables: &variables };
    let result = evaluate_field(
        "Output",
        &json!({"sum": "{% $states.input.a + $states.input.b %}", "x": "{% $x %}", "again": "{% $x + 1 %}"}),
        &bindings,
    );
    assert_eq!(result, Ok(json!({"sum": 3, "x": 10, "again": 11})));
}

#[test]
fn plain_paths_keep_64_bit_integers_exact() {
    let input =
        json!({"id": 12345678901234567_i64, "max": i64::MAX, "float": 1.0, "nested": {"ids": [9007199254740993_i64]}});
    let variables = json!({"big": {"n": 9007199254740993_i64}});
    let result = |expression| evaluate_with(expression, input.clone(), variables.clone()).unwrap().unwrap();
    assert_eq!(result("{% $states.input.id %}").to_string(), "12345678901234567");
    assert_eq!(result("{% $states.input.max %}").to_string(), "9223372036854775807");
    assert_eq!(result("{% $big.n %}").to_string(), "9007199254740993");
    assert_eq!(result("{% $states.input.float %}").to_string(), "1");
    assert_eq!(result("{% $states.input.nested %}").to_string(), "{\"ids\":[9007199254740993]}");
    // Anything more than a plain path goes through JSONata's doubles.
    assert_eq!(result("{% $states.input.id + 0 %}").to_string(), "12345678901234568");
    let beyond_i64 = evaluate_with("{% $states.input.n %}", json!({"n": u64::MAX}), json!({})).unwrap().unwrap();
    assert_eq!(beyond_i64, json!(1.8446744073709552e19));
}

#[test]
fn plain_paths_read_directly_agree_with_the_evaluator() {
    let input = json!({
        "text": "s", "number": 2.5, "whole": 3.0, "none": null, "yes": true,
        "empty": [], "one": [7], "many": [1, [2, 3], {"k": "v"}], "object": {"inner": {"deep": [1.0]}},
        "objects": [{"k": 1}, {"k": 2}], "emptyObject": {}
    });
    let variables = json!({"var": {"a": {"b": [1, 2]}}, "scalar": 4});
    for path in [
        "$states.input",
        "$states.input.text",
        "$states.input.number",
        "$states.input.whole",
        "$states.input.none",
        "$states.input.yes",
        "$states.input.empty",
        "$states.input.one",
        "$states.input.many",
        "$states.input.object",
        "$states.input.object.inner.deep",
        "$states.input.objects",
        "$states.input.objects.k",
        "$states.input.emptyObject",
        "$states.input.missing",
        "$states.input.none.below",
        "$states.input.text.below",
        "$states.context.Execution",
        "$var",
        "$var.a.b",
        "$scalar",
        "$scalar.x",
        "$unknown",
        "$states.input.one.x",
    ] {
        let direct = evaluate_with(&format!("{{% {path} %}}"), input.clone(), variables.clone());
        // Parentheses make a block, which is not a plain path: the evaluator answers it.
        let evaluated = evaluate_with(&format!("{{% ({path}) %}}"), input.clone(), variables.clone());
        assert_eq!(direct, evaluated, "{path}");
    }
}
