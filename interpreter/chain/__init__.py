"""A plan against a chain-backed executor (`--executor evm`): each on-chain node is one
transaction of that executor, the model's verdict and amounts checked against the chain's
(docs/evm.md). The rest of the plan — asserts, CEX trades, wallet transfers — runs as in
`stratplan run`."""
