"""A real editor: headless Neovim starts `stratplan lsp`, shows its diagnostics and hovers.

Neovim comes from Debian (`apt-get install neovim`); the test skips, saying so, only where
`nvim` is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE

NVIM = shutil.which("nvim")

# Neovim 0.7 (Debian 12) has no vim.lsp.start, so the client is started and attached by hand.
SCRIPT = r"""
local plan, out = vim.env.STRATPLAN_PLAN, vim.env.STRATPLAN_OUT
vim.cmd('edit ' .. vim.fn.fnameescape(plan))
local bufnr = vim.api.nvim_get_current_buf()
local published = false
local id = vim.lsp.start_client({
  name = 'stratplan',
  cmd = {vim.env.STRATPLAN_PYTHON, '-m', 'stratplan', 'lsp'},
  root_dir = vim.fn.fnamemodify(plan, ':h'),
  handlers = {['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
    vim.lsp.diagnostic.on_publish_diagnostics(err, result, ctx, config)
    published = true
  end},
})
vim.lsp.buf_attach_client(bufnr, id)
local got = vim.wait(30000, function() return published end, 50)
local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(bufnr)) do
  local lsp = d.user_data and d.user_data.lsp or {}
  table.insert(diagnostics, {code = d.code or lsp.code, lnum = d.lnum, col = d.col,
                             severity = d.severity, message = d.message})
end
local hover = vim.lsp.buf_request_sync(bufnr, 'textDocument/hover', {
  textDocument = {uri = vim.uri_from_bufnr(bufnr)},
  position = {line = tonumber(vim.env.STRATPLAN_LINE), character = 4},
}, 30000)
local hover_text = ''
for _, response in pairs(hover or {}) do
  if response.result then hover_text = response.result.contents.value end
end
local file = io.open(out, 'w')
file:write(vim.fn.json_encode({waited = got, diagnostics = diagnostics, hover = hover_text}))
file:close()
vim.lsp.stop_client(id)
vim.cmd('qall!')
"""


@pytest.mark.skipif(NVIM is None, reason="nvim is not installed (Debian: apt-get install neovim)")
@pytest.mark.parametrize(("name", "line"), [("sp300_overdraw.plan", 3),
                                            ("clean_atomic_flash.plan", 7)])
def test_neovim_shows_diagnostics_and_hover(tmp_path: Path, name: str, line: int):
    assert NVIM is not None
    plan = tmp_path / name
    shutil.copy(CONFORMANCE / name, plan)
    script = tmp_path / "client.lua"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "out.json"
    env = {**os.environ, "STRATPLAN_PLAN": str(plan), "STRATPLAN_OUT": str(out),
           "STRATPLAN_PYTHON": sys.executable, "STRATPLAN_LINE": str(line),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    run = subprocess.run([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {script}"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.is_file(), f"nvim wrote nothing: {run.stdout} {run.stderr}"
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["waited"] is True  # the server published diagnostics for the buffer
    if name == "sp300_overdraw.plan":
        (diagnostic,) = result["diagnostics"]
        assert (diagnostic["code"], diagnostic["lnum"], diagnostic["col"]) == ("SP300", 3, 2)
        assert diagnostic["severity"] == 1  # vim.diagnostic.severity.ERROR
        assert "fails: SP300" in result["hover"]
    else:
        assert result["diagnostics"] == []  # a clean plan: nothing to wait for
        assert "health(aave) = 1.2466" in result["hover"]
