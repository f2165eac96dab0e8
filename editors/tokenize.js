// Tokenize a file with the TextMate grammar, with the engine VS Code uses (vscode-textmate
// and vscode-oniguruma from npm). Prints JSON: [[line, [[text, [scopes...]], ...]], ...]
// Usage: node editors/tokenize.js GRAMMAR.json FILE.plan   (used by tests/test_editors.py)
const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');
const [grammarPath, filePath] = process.argv.slice(2);
const wasm = fs.readFileSync(path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm')).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (p) => new oniguruma.OnigScanner(p),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath),
});
registry.loadGrammar('source.stratplan').then((grammar) => {
  let state = vsctm.INITIAL;
  const out = [];
  for (const line of fs.readFileSync(filePath, 'utf8').split(/\r\n|\r|\n/)) {
    const r = grammar.tokenizeLine(line, state);
    out.push([line, r.tokens.map((t) => [line.substring(t.startIndex, t.endIndex), t.scopes.slice(1)])]);
    state = r.ruleStack;
  }
  console.log(JSON.stringify(out));
});
