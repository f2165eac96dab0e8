// Compile Solidity with solc-js for `stratplan evm setup` (executors/evm/setup.py).
// Reads one JSON object on stdin:
//   {"solc": FOLDER_OF_THE_SOLC_PACKAGE, "root": FOLDER, "entries": [PATH, ...],
//    "remaps": [[PREFIX, FOLDER], ...], "settings": SOLC_SETTINGS}
// and writes {"version", "errors": [...], "contracts": {NAME: {abi, bytecode, linkReferences}}}
// on stdout. Imports resolve under `root`, or under a remapped folder; nothing else is read.
'use strict';
const fs = require('fs');
const path = require('path');

function main(text) {
  const job = JSON.parse(text);
  const solc = require(job.solc);
  const root = path.resolve(job.root);
  const within = (folder, file) => {
    const full = path.resolve(folder, file);
    return full.startsWith(path.resolve(folder) + path.sep) ? full : null;
  };
  const findImports = (wanted) => {
    let file = null;
    for (const [prefix, folder] of job.remaps) {
      if (wanted.startsWith(prefix)) { file = within(folder, wanted.slice(prefix.length)); break; }
    }
    if (file === null) file = within(root, wanted);
    if (file === null) return {error: 'outside the package: ' + wanted};
    try { return {contents: fs.readFileSync(file, 'utf8')}; } catch (e) { return {error: 'not found: ' + wanted}; }
  };
  const sources = {};
  for (const entry of job.entries) {
    const file = within(root, entry);
    if (file === null) throw new Error('outside the package: ' + entry);
    sources[entry] = {content: fs.readFileSync(file, 'utf8')};
  }
  const settings = Object.assign({}, job.settings, {
    outputSelection: {'*': {'*': ['abi', 'evm.bytecode.object', 'evm.bytecode.linkReferences']}},
  });
  const input = {language: 'Solidity', sources, settings};
  const output = JSON.parse(solc.compile(JSON.stringify(input), {import: findImports}));
  const errors = (output.errors || []).filter((e) => e.severity === 'error').map((e) => e.formattedMessage);
  const contracts = {};
  for (const [source, found] of Object.entries(output.contracts || {})) {
    for (const [name, built] of Object.entries(found)) {
      if (!built.evm || !built.evm.bytecode.object) continue;  // interfaces, abstract contracts
      contracts[name] = {source, abi: built.abi, bytecode: '0x' + built.evm.bytecode.object,
                         linkReferences: built.evm.bytecode.linkReferences};
    }
  }
  process.stdout.write(JSON.stringify({version: solc.version(), errors, contracts}));
}

let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  try { main(text); } catch (e) { process.stderr.write(String(e && e.message || e) + '\n'); process.exit(1); }
});
