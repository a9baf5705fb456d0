#!/usr/bin/env bash
# Installs the chain tools that contracts/build.mjs and the contract tests need into .tools/
# (project-local, never global), at the versions pinned in contracts/tools/package-lock.json:
#   solc 0.8.30            npm `solc` (soljson), compiles contracts/SettlementOracle.sol
#   @foundry-rs/anvil 1.7.1  ships the real anvil binary for this platform
# and links the binary to .tools/bin/anvil, where the tests look for it (or set FIXD_ANVIL).
# Idempotent: when the lockfile has not changed it only checks the binary, in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.tools
lock=contracts/tools/package-lock.json
stamp="$tools/.installed"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

# Debian packages, installed only when missing (apt-get update first, then only):
#   curl       the devnet prints, and its test runs, a getSettlement read as a curl command;
#   nftables   `nft`: the network-fault tests (testkit/src/netns, cli/tests/it/network_faults.rs)
#   iproute2   `ip`, `tc`: run nodes, anvil and the venues in network namespaces, cut links
#              with nft and delay them with tc netem; they fail, never skip, without these.
has() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }
missing=()
has curl || missing+=(curl)
has nft || missing+=(nftables)
{ has ip && has tc; } || missing+=(iproute2)
if ((${#missing[@]})); then
  echo "==> installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: ${missing[*]} missing; install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is missing; install Node.js 20 or later (apt-get install nodejs npm)" >&2
  exit 1
fi

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -x "$tools/bin/anvil" ]]; then
  echo "==> installing chain tools (solc, anvil) into $tools/"
  start=$(date +%s)
  mkdir -p "$tools"
  cp contracts/tools/package.json "$lock" "$tools/"
  # anvil's postinstall script is not needed: the binary comes in the platform package.
  npm ci --prefix "$tools" --ignore-scripts --no-audit --no-fund --loglevel=error
  bin="$(ls "$tools"/node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n1 || true)"
  if [[ -z "$bin" ]]; then
    echo "error: @foundry-rs/anvil has no binary for $(uname -sm) in $tools/node_modules/@foundry-rs/" >&2
    exit 1
  fi
  mkdir -p "$tools/bin"
  ln -sfn "$(realpath "$bin")" "$tools/bin/anvil"
  echo "$want" >"$stamp"
  echo "==> chain tools installed in $(($(date +%s) - start)) s"
fi

if ! "$tools/bin/anvil" --version | grep -q '^anvil Version: 1.7.1'; then
  echo "error: $tools/bin/anvil is not anvil 1.7.1; delete $tools/ and run scripts/install-tools.sh" >&2
  exit 1
fi

# schemathesis (PyPI, pinned) in a venv under .tools/venv: the API process test
# (cli/tests/it/api_load.rs) runs it against a real node; it fails, never skips, without it.
schemathesis_version=4.32.5
if ! .tools/venv/bin/schemathesis --version 2>/dev/null | grep -q "$schemathesis_version"; then
  echo "==> installing schemathesis $schemathesis_version into $tools/venv"
  if ! python3 -m venv "$tools/venv"; then
    echo "error: python3 -m venv failed; install Python 3.10 or later with venv (apt-get install python3-venv)" >&2
    exit 1
  fi
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
