#!/usr/bin/env bash
# Install everything the tests need (Debian packages, a virtualenv with the project),
# then run the linters, the type checker and the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r package; do
  [[ -z "$package" || "$package" == \#* ]] && continue
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done < .ci/apt-packages.txt
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# axe-core (accessibility tests), Prism (a spec-checking local Twilio) and the Nu HTML
# Checker (run on Debian's Java), pinned in tests/node/package-lock.json
if [[ ! -f tests/node/node_modules/axe-core/axe.min.js || ! -x tests/node/node_modules/.bin/prism
      || ! -f tests/node/node_modules/vnu-jar/build/dist/vnu.jar ]]; then
  npm ci --prefix tests/node --no-audit --no-fund --silent
fi

# Twilio's official OpenAPI description (github twilio/twilio-oai, MIT), as npm publishes it
# inside @twilio-alpha/mcp 0.7.0: only the file Prism serves is kept, and only if its hash
# is the pinned one (the rest of that package and its dependencies are not needed).
spec=tests/node/twilio-oai/twilio_api_v2010.json
spec_sha256=475b69553e34e797af05d34679cdad3bc3b8b4b8b92e6ac044fa6ebc255bf052
if ! echo "$spec_sha256  $spec" | sha256sum --check --status 2>/dev/null; then
  packed=$(mktemp -d)
  (cd "$packed" && npm pack --silent @twilio-alpha/mcp@0.7.0 >/dev/null)
  mkdir -p "$(dirname "$spec")"
  tar -xzOf "$packed"/twilio-alpha-mcp-0.7.0.tgz package/twilio-oai/spec/json/twilio_api_v2010.json >"$spec"
  rm -rf "$packed"
  echo "$spec_sha256  $spec" | sha256sum --check --quiet
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/python - <<'PY'
import prefect
assert prefect.__version__ == "3.8.8", f"expected Prefect 3.8.8, found {prefect.__version__}"
PY

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
