"""The ledger on an EVM chain: the contracts (``contracts/Ledger.vy``, ``contracts/Jobs.vy``
for verified jobs), their compiler cache, the
:class:`~deai.ledger.evm.backend.EvmLedger` backend and the local chain nodes (anvil, eth-tester).

Import the parts from their modules (``deai.ledger.evm.backend``, ``deai.ledger.evm.node``): this
package imports nothing heavy (web3) by itself.
"""

__all__: list[str] = []
