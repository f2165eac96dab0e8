"""The reference: the plan's market on a local EVM with the real Aave and Balancer
(docs/evm.md). An optional part: `pip install "stratplan[evm]"` (titanoboa), then
`stratplan evm setup` fetches and builds the contracts.

Nothing here is imported by the rest of the tool unless `--executor evm` or `stratplan evm`
asks for it: titanoboa and py-evm take about a second to import.
"""
