#!/usr/bin/env node
// Compiles contracts/SettlementOracle.sol and its consumers in contracts/consumers/ (PNVault,
// PNToken, SettlementReader, GammaPriceAdapter) with the pinned solc (npm `solc`, installed into
// .tools/ by scripts/install-tools.sh) against the pinned OpenZeppelin Contracts (npm
// `@openzeppelin/contracts`, same place), and the test-only actors contracts/test/Payee.sol and
// contracts/test/PNHolder.sol, and the README's example contracts/examples/SettledForward.sol. Each gets an artifact in contracts/out/<Name>.json: the ABI, the
// creation and runtime bytecode, the compiler version, the settings and the library version.
//
//   node contracts/build.mjs           write the artifact
//   node contracts/build.mjs --check   exit 1 if the committed artifact differs from a fresh build
//   node contracts/build.mjs --stdout  print the artifact instead of writing it
//
// The output is deterministic: same source, same compiler, same settings, same bytes.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SOLC_VERSION = "0.8.30";
/// Each contract built, with its source under contracts/. `Payee` is a test-only actor (a
/// disputer with code) for the contract tests and the invariant run; nothing deploys it
/// elsewhere.
const CONTRACTS = [
  { name: "SettlementOracle", source: "SettlementOracle.sol" },
  { name: "Payee", source: "test/Payee.sol" },
  { name: "SettlementReader", source: "consumers/SettlementReader.sol" },
  { name: "GammaPriceAdapter", source: "consumers/GammaPriceAdapter.sol" },
  { name: "PNVault", source: "consumers/PNVault.sol" },
  { name: "PNToken", source: "consumers/PNToken.sol" },
  { name: "PNHolder", source: "test/PNHolder.sol" },
  { name: "SettledForward", source: "examples/SettledForward.sol" },
];
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  metadata: { bytecodeHash: "ipfs", appendCBOR: true },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const artifactPath = (name) => join(here, "out", `${name}.json`);

function loadSolc() {
  const require = createRequire(join(root, ".tools", "package.json"));
  let solc;
  try {
    solc = require("solc");
  } catch {
    console.error("error: npm solc is not installed in .tools/; run scripts/install-tools.sh");
    process.exit(2);
  }
  if (!solc.version().startsWith(`${SOLC_VERSION}+`)) {
    console.error(`error: .tools has solc ${solc.version()}, expected ${SOLC_VERSION}; run scripts/install-tools.sh`);
    process.exit(2);
  }
  return solc;
}

/// Resolves `@openzeppelin/contracts/...` imports from .tools/node_modules and the consumers'
/// own relative imports (`./ISettlementOracle.sol` in consumers/) from contracts/consumers/.
function findImports(path) {
  if ((path.startsWith("consumers/") || path.startsWith("examples/")) && !path.includes("..")) {
    try {
      return { contents: readFileSync(join(here, path), "utf8") };
    } catch {
      return { error: `contracts/${path} does not exist` };
    }
  }
  if (!path.startsWith("@openzeppelin/contracts/")) return { error: `import ${path} is not allowed` };
  try {
    return { contents: readFileSync(join(root, ".tools", "node_modules", path), "utf8") };
  } catch {
    return { error: `${path} is not installed in .tools/; run scripts/install-tools.sh` };
  }
}

function openZeppelinVersion() {
  const manifest = join(root, ".tools", "node_modules", "@openzeppelin", "contracts", "package.json");
  return JSON.parse(readFileSync(manifest, "utf8")).version;
}

function build({ name, source }) {
  const solc = loadSolc();
  const input = {
    language: "Solidity",
    sources: { [source]: { content: readFileSync(join(here, source), "utf8") } },
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  // solc warns at every TSTORE; the one in OpenZeppelin's re-entry guard is the intended use
  // (the guard is cleared at the end of each call), so that warning alone is let through.
  const guardWarning = (p) =>
    p.severity === "warning" &&
    p.sourceLocation?.file === "@openzeppelin/contracts/utils/TransientSlot.sol" &&
    p.message.startsWith("Transient storage as defined by EIP-1153");
  const problems = (output.errors ?? []).filter((p) => !guardWarning(p));
  for (const p of problems) console.error(p.formattedMessage);
  if (problems.some((p) => p.severity === "error")) process.exit(1);
  if (problems.length > 0) {
    console.error("error: solc warnings are errors here; fix them");
    process.exit(1);
  }
  const compiled = output.contracts[source][name];
  const { outputSelection, ...settings } = SETTINGS;
  const artifact = {
    contractName: name,
    sourceName: `contracts/${source}`,
    compiler: { name: "solc", version: solc.version(), settings },
    libraries: { "@openzeppelin/contracts": openZeppelinVersion() },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

const mode = process.argv[2] ?? "--write";
let stale = false;
for (const contract of CONTRACTS) {
  const fresh = build(contract);
  const path = artifactPath(contract.name);
  if (mode === "--stdout") {
    process.stdout.write(fresh);
  } else if (mode === "--check") {
    let committed = "";
    try {
      committed = readFileSync(path, "utf8");
    } catch {}
    if (committed !== fresh) {
      console.error(`error: ${path} is stale; run node contracts/build.mjs and commit it`);
      stale = true;
    } else {
      console.error(`${path} matches a fresh build with solc ${SOLC_VERSION}`);
    }
  } else if (mode === "--write") {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, fresh);
    console.error(`wrote ${path}`);
  } else {
    console.error("usage: node contracts/build.mjs [--write | --check | --stdout]");
    process.exit(2);
  }
}
if (stale) process.exit(1);
