#!/usr/bin/env node
// Compiles contracts/SettlementOracle.sol with the pinned solc (npm `solc`, installed into
// .tools/ by scripts/install-tools.sh) and writes contracts/out/SettlementOracle.json: the ABI,
// the creation and runtime bytecode, the compiler version and the settings.
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
const CONTRACT = "SettlementOracle";
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  metadata: { bytecodeHash: "ipfs", appendCBOR: true },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const artifactPath = join(here, "out", `${CONTRACT}.json`);

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

function build() {
  const solc = loadSolc();
  const file = `${CONTRACT}.sol`;
  const input = {
    language: "Solidity",
    sources: { [file]: { content: readFileSync(join(here, file), "utf8") } },
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors ?? [];
  for (const p of problems) console.error(p.formattedMessage);
  if (problems.some((p) => p.severity === "error")) process.exit(1);
  if (problems.length > 0) {
    console.error("error: solc warnings are errors here; fix them");
    process.exit(1);
  }
  const compiled = output.contracts[file][CONTRACT];
  const { outputSelection, ...settings } = SETTINGS;
  const artifact = {
    contractName: CONTRACT,
    sourceName: `contracts/${file}`,
    compiler: { name: "solc", version: solc.version(), settings },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

const mode = process.argv[2] ?? "--write";
const fresh = build();
if (mode === "--stdout") {
  process.stdout.write(fresh);
} else if (mode === "--check") {
  let committed = "";
  try {
    committed = readFileSync(artifactPath, "utf8");
  } catch {}
  if (committed !== fresh) {
    console.error(`error: ${artifactPath} is stale; run node contracts/build.mjs and commit it`);
    process.exit(1);
  }
  console.error(`${artifactPath} matches a fresh build with solc ${SOLC_VERSION}`);
} else if (mode === "--write") {
  mkdirSync(dirname(artifactPath), { recursive: true });
  writeFileSync(artifactPath, fresh);
  console.error(`wrote ${artifactPath}`);
} else {
  console.error("usage: node contracts/build.mjs [--write | --check | --stdout]");
  process.exit(2);
}
