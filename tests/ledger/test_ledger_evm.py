"""The EVM backend beyond the conformance suite: the relay cannot forge, two hubs on one chain
agree, verify catches a contract whose storage was rewritten, and a real anvil keeps its state
across a restart."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from conftest import ACCOUNTS, test_config
from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import COMPUTE, ManualClock, SignedTx, draw_executors, errors, model_id, payout_tree, txs
from deai.ledger.draw import draw_seed
from deai.ledger.evm.backend import EvmLedger
from deai.ledger.evm.compile import CONTRACTS
from deai.ledger.evm.node import ANVIL_INSTALL, AnvilNode, find_anvil
from deai.ledger.evm.node import tester_chain as new_chain
from deai.ledger.tx import TX_TYPES
from deai.ledger.typed import abi_args, struct_type

MINTER, A, B, C = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[3]


@pytest.fixture
def chain():
    return new_chain()


@pytest.fixture
def hub(chain):
    return EvmLedger(chain, test_config(), clock=ManualClock(1_000_000))


def test_typed_struct_types_match_the_contract():
    source = (CONTRACTS / "Ledger.vy").read_text() + (CONTRACTS / "Jobs.vy").read_text()
    declared = set(re.findall(r'keccak256\(\s*"([A-Za-z]+\([^"]*\))"', source)) - {
        "EIP712Domain(string name,string version,bytes32 salt)"
    }
    ours = {struct_type(cls) for kind, cls in TX_TYPES.items() if kind in EvmLedger.supported_kinds()}
    assert declared == ours


def test_typed_signature_travels_on_the_wire_and_old_wires_still_parse():
    stx = SignedTx.create(A, txs.Transfer(to=B.address, amount=3), nonce=0, network="deai-test")
    assert SignedTx.from_bytes(stx.to_bytes()) == stx
    stx.verify_typed_signature()
    old = {k: v for k, v in stx.to_dict().items() if k != "typed_signature"}
    parsed = SignedTx.from_dict(old)
    assert parsed.typed_signature is None and parsed.id == stx.id
    with pytest.raises(errors.BadTxSignature, match="typed"):
        parsed.verify_typed_signature()
    with pytest.raises(errors.MalformedTx):
        SignedTx.from_dict({**old, "typed_signature": None})


def test_the_relay_cannot_forge_alter_or_replay(hub):
    hub.send(MINTER, txs.Mint(to=A.address, amount=1_000))
    stx = hub.sign(A, txs.Transfer(to=B.address, amount=10))
    sig = stx.typed_signature
    relay = hub.w3.eth.accounts[0]
    fn = hub.contract.functions.transfer
    altered = fn(A.address, stx.nonce, C.address, 10, sig[64], sig[:32], sig[32:64])  # to changed
    with pytest.raises(Exception, match="BadTxSignature"):
        altered.call({"from": relay})
    forged = SignedTx.create(C, stx.tx, nonce=0, network="deai-test")  # C signs a tx "from" A
    fsig = forged.typed_signature
    with pytest.raises(Exception, match="BadTxSignature"):
        fn(A.address, 0, *abi_args(stx.tx), fsig[64], fsig[:32], fsig[32:64]).call({"from": relay})
    # without the typed signature the backend refuses before touching the chain
    bare = SignedTx(stx.tx, stx.sender, stx.nonce, stx.network, stx.signature)
    with pytest.raises(errors.BadTxSignature, match="typed"):
        hub.submit(bare)
    hub.submit(stx)
    with pytest.raises(errors.ReplayedNonce):
        hub.submit(stx)
    assert hub.balance(B.address) == 10 and hub.balance(A.address) == 990
    # the Ledger's interface for the Jobs contract (envelope, fund moves) and the Jobs contract's
    # provider hook answer nobody else, the relay included
    with pytest.raises(Exception, match="revert"):
        hub.contract.functions.job_op(2, relay, 0, 1_000, bytes(32)).call({"from": relay})
    with pytest.raises(Exception, match="revert"):
        hub.contract.functions.begin(A.address, 1, bytes(32), 27, bytes(32), bytes(32)).call({"from": relay})
    with pytest.raises(Exception, match="revert"):
        hub.jobs.functions.on_stake(relay, 1).call({"from": relay})
    with pytest.raises(Exception, match="revert"):
        hub.jobs.functions.bind(relay).call({"from": relay})


def test_two_hubs_on_one_chain_agree_and_a_participant_switches(chain, hub):
    other = EvmLedger(chain, test_config(), deploy=hub.address, clock=ManualClock(1_000_000))
    task = hash_value("task")
    hub.send(MINTER, txs.Mint(to=A.address, amount=10_000))
    other.send(MINTER, txs.Mint(to=B.address, amount=5_000))
    hub.send(A, txs.CreateTask(task=task, budget=4_000, params=task))
    other.send(B, txs.Stake(role=COMPUTE, amount=1_000))
    hub.send(B, txs.JoinTask(task=task, role=COMPUTE))  # the participant switched hubs
    tree = payout_tree({B.address: 300, C.address: 200})
    other.send(A, txs.PostPayoutRoot(task=task, epoch=0, root=tree.root, total=500))
    hub.send(C, txs.ClaimPayout(task=task, epoch=0, amount=200, proof=tuple(tree.proof(C.address))))
    with pytest.raises(errors.DoubleClaim):
        other.send(C, txs.ClaimPayout(task=task, epoch=0, amount=200, proof=tuple(tree.proof(C.address))))
    for query in ("head", "state_root", "supply", "events"):
        assert getattr(hub, query)() == getattr(other, query)(), query
    assert hub.history(C.address) == other.history(C.address)
    assert hub.member(task, B.address) == other.member(task, B.address) is not None
    assert hub.verify().ok and other.verify().ok
    assert hub.check_invariants()["minted"] == 15_000


def test_verify_catches_rewritten_contract_storage(chain, hub):
    hub.send(MINTER, txs.Mint(to=A.address, amount=1_000))
    hub.send(A, txs.Transfer(to=B.address, amount=100))
    assert hub.verify().ok
    # an operator of the node rewrites B's balance in the contract's storage
    evm = chain.provider.ethereum_tester.backend.chain
    state = evm.get_vm().state
    slot = _balance_slot(B.address)
    assert state.get_storage(bytes.fromhex(hub.address[2:]), slot) == 100
    state.set_storage(bytes.fromhex(hub.address[2:]), slot, 10_000)
    state.persist()
    evm.header = evm.header.copy(state_root=state.state_root)
    chain.provider.ethereum_tester.mine_blocks()
    assert hub.balance(B.address) == 10_000
    report = hub.verify()
    assert not report.ok and report.state_root != report.stored_root


def test_a_transaction_the_chain_reverts_after_the_reference_accepted_it(chain, hub):
    """Submitting sends what the reference machine accepts on the mirror without simulating it
    first; when the chain then reverts it (here: the contract's storage was rewritten, so the
    contract and the replay disagree), the contract's reason is raised, nothing changes on the
    ledger, and from then on every transaction is simulated before it is sent."""
    hub.send(MINTER, txs.Mint(to=A.address, amount=1_000))
    assert not hub.simulate_first
    evm = chain.provider.ethereum_tester.backend.chain
    state = evm.get_vm().state
    state.set_storage(bytes.fromhex(hub.address[2:]), _balance_slot(A.address), 10)
    state.persist()
    evm.header = evm.header.copy(state_root=state.state_root)
    chain.provider.ethereum_tester.mine_blocks()
    head = hub.head()
    with pytest.raises(errors.InsufficientBalance):
        hub.send(A, txs.Transfer(to=B.address, amount=100))
    assert hub.simulate_first
    assert hub.head() == head and hub.balance(A.address) == 10 and hub.balance(B.address) == 0
    with pytest.raises(errors.InsufficientBalance):  # simulated now: refused before it is sent
        hub.send(A, txs.Transfer(to=B.address, amount=100))
    assert not hub.verify().ok


def _balance_slot(address: str) -> int:
    from vyper import compile_code

    layout = compile_code((CONTRACTS / "Ledger.vy").read_text(), output_formats=["layout"])["layout"]
    base = layout["storage_layout"]["balances"]["slot"]
    from deai.core.encoding import keccak256

    return int.from_bytes(keccak256(base.to_bytes(32, "big") + bytes(12) + bytes.fromhex(address[2:])), "big")


def test_a_paying_relayer_account(chain):
    relayer = Account.from_seed("relayer", 0)
    chain.eth.send_transaction({"from": chain.eth.accounts[0], "to": relayer.address, "value": 10**20})
    ledger = EvmLedger(chain, test_config(), relayer=relayer, clock=ManualClock(5_000))
    ledger.send(MINTER, txs.Mint(to=A.address, amount=7))
    assert ledger.balance(A.address) == 7 and ledger.nonce(MINTER.address) == 1
    assert chain.eth.get_balance(relayer.address) < 10**20  # the relayer paid the gas


def test_anvil_keeps_the_ledger_across_a_restart(tmp_path):
    if find_anvil() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"anvil is missing on CI; {ANVIL_INSTALL}")
        pytest.skip(f"anvil is not installed; {ANVIL_INSTALL}")
    with AnvilNode(tmp_path / "chain") as node:
        ledger = EvmLedger(node.url, test_config())
        ledger.send(MINTER, txs.Mint(to=A.address, amount=500))
        ledger.send(A, txs.Transfer(to=B.address, amount=20))
        address, root, head = ledger.address, ledger.state_root(), ledger.head()
    with AnvilNode(tmp_path / "chain", port=node.port) as node:
        again = EvmLedger(node.url, test_config(), deploy=address)
        assert again.head() == head and again.state_root() == root and again.balance(B.address) == 20
        again.send(A, txs.Transfer(to=B.address, amount=1))
        assert again.balance(B.address) == 21 and again.verify().ok


def _adversarial_module():
    return _load("adversarial/test_ledger_rules.py", "adversarial_ledger_rules_on_evm")


# the adversarial ledger tests that take a ``net`` (every area is on the contract now); the
# default suite runs three, -m slow the others (a few seconds each on py-evm)
_SLOW = pytest.mark.slow
ADVERSARIAL_ON_EVM = [
    "test_a_sybil_with_quorum_tricks_cannot_take_honest_stakes",
    "test_a_resolver_cannot_fault_an_executor_with_the_accepted_digest",
    "test_a_member_cannot_unstake_its_role_until_it_left_the_task",
    pytest.param("test_an_outsider_cannot_register_a_job_that_endangers_anyone", marks=_SLOW),
    pytest.param("test_drawn_executors_that_ignore_a_strangers_job_lose_nothing", marks=_SLOW),
    pytest.param(
        "test_a_stranger_that_never_reveals_its_choice_frees_every_lock_in_bounded_time", marks=_SLOW
    ),
    pytest.param("test_a_commit_needs_the_stake_the_draw_required", marks=_SLOW),
    pytest.param("test_task_job_fees_come_from_the_task_budget", marks=_SLOW),
    pytest.param("test_model_ids_cannot_be_squatted", marks=_SLOW),
]


@pytest.mark.parametrize("name", ADVERSARIAL_ON_EVM)
def test_adversarial_ledger_rules_against_the_contract(name):
    adv = _adversarial_module()
    clock = ManualClock(1_000_000)
    net = adv.Net(EvmLedger(new_chain(), adv.config(), clock=clock), clock)
    for account in adv.HONEST:
        net.staked(account, COMPUTE, adv.STAKE)
    getattr(adv, name)(net)
    net.conserved()
    assert net.ledger.verify().ok


def _load(relative: str, name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stateful_invariants_on_the_contract():
    _stateful_on_chain(examples=1, steps=20)


@pytest.mark.slow
def test_stateful_invariants_on_the_contract_many():
    _stateful_on_chain(examples=4 if os.environ.get("DEAI_SMALL") == "1" else 30, steps=30)


def _stateful_on_chain(examples: int, steps: int) -> None:
    """The hypothesis machine of test_ledger_stateful.py (conservation after every transaction, a
    refusal changes nothing) on the contract; at the end the EVM verify, and a second backend
    attached to the same contract agrees (job and model steps included)."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    stateful = _load("ledger/test_ledger_stateful.py", "ledger_stateful_on_evm")

    def factory(clock):
        return EvmLedger(new_chain(), test_config(), clock=clock)

    class OnChain(stateful.LedgerMachine):
        def teardown(self):
            report = self.ledger.verify()
            assert report.ok, report.problem
            assert report.state_root == self.ledger.state_root()
            other = EvmLedger(self.ledger.w3, test_config(), deploy=self.ledger.address)
            assert other.state_root() == self.ledger.state_root() and other.head() == self.ledger.head()

    OnChain.factory = staticmethod(factory)
    OnChain.accounts = [*ACCOUNTS[: stateful.N], ACCOUNTS[10]]
    run_state_machine_as_test(
        OnChain,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def test_model_ids_derived_on_chain_equal_the_python_ids(hub):
    """The contract rebuilds deai.ledger.commitments.model_id (canonical JSON with an EIP-55
    address, SHA-256) for many registrants, with and without a task."""
    task = hash_value("model-task")
    hub.send(MINTER, txs.Mint(to=A.address, amount=10))
    hub.send(A, txs.CreateTask(task=task, budget=0, params=task))
    for i, account in enumerate([*ACCOUNTS[:10], A]):
        doc = hash_value(f"doc{i}")
        of_task = task if account is A else None
        good = model_id(account.address, of_task, doc)
        tx = txs.RegisterModel(
            model=good, task=of_task, provenance=doc, document=doc, total_shares=1, host_bps=0
        )
        wrong = txs.RegisterModel(
            model=model_id(B.address if account is not B else C.address, of_task, doc),
            task=of_task,
            provenance=doc,
            document=doc,
            total_shares=1,
            host_bps=0,
        )
        with pytest.raises(errors.BadModelId):
            hub.send(account, wrong)
        hub.send(account, tx)
        assert hub.model(good).owner == account.address
    assert hub.verify().ok


def test_negative_and_far_nonces_are_refused_like_elsewhere(hub):
    hub.send(MINTER, txs.Mint(to=A.address, amount=5))
    with pytest.raises(errors.ReplayedNonce):
        hub.submit(hub.sign(A, txs.Transfer(to=B.address, amount=1), nonce=-1))
    with pytest.raises(errors.BadNonce):
        hub.submit(hub.sign(A, txs.Transfer(to=B.address, amount=1), nonce=2**53 - 1))
    assert hub.nonce(A.address) == 0 and hub.verify().ok


def test_the_contract_draws_like_the_reference_in_checksummed_address_order(hub):
    """The Jobs contract keeps each role's providers in the order of their checksummed addresses
    (what deai.ledger.draw sorts by: not the numeric order) and draws executors bit for bit like
    the reference draw, with the ledger head before the registration and the job id as seed."""
    providers = ACCOUNTS[2:12]
    numeric = sorted(a.address for a in providers)
    by_number = sorted(numeric, key=lambda a: int(a, 16))
    assert numeric != by_number  # the two orders differ here, so a numeric list would draw wrong
    hub.send(MINTER, txs.Mint(to=A.address, amount=100_000))
    for i, p in enumerate(providers):
        hub.send(MINTER, txs.Mint(to=p.address, amount=20_000))
        hub.send(p, txs.Stake(role=COMPUTE, amount=1_000 + 1_000 * i))
    walked, cur = [], hub.jobs.functions.next_provider(1, "0x" + "00" * 20).call()
    while int(cur, 16):
        walked.append(cur)
        cur = hub.jobs.functions.next_provider(1, cur).call()
    assert walked == numeric
    for n in range(6):
        job = hash_value(f"draw-{n}")
        head = hub.head().hash
        hub.send(
            A,
            txs.RegisterJob(
                job=job,
                task=None,
                job_type="aggregate",
                inputs=(),
                fee=1,
                executors=5,
                replication=hash_value("r"),
                commit_window_ms=1_000,
                reveal_window_ms=1_000,
            ),
        )
        candidates = hub.eligible_executors(COMPUTE, 1, exclude=A.address)
        expected = draw_executors(candidates, draw_seed(head, job), 5)
        assert list(hub.job(job).executors) == expected
    assert hub.verify().ok and hub.check_invariants()["job_escrow"] == 30


def _jobs_on_chain(examples: int, steps: int) -> None:
    """The adversarial JobMachine (random register / commit / reveal / resolve / accept by random
    actors, some unfunded; only committed executors are slashed, funds conserved) on the contracts,
    and the chain verifies against the reference replay at the end."""
    from hypothesis import HealthCheck, settings

    adv = _load("adversarial/test_ledger_rules.py", "adversarial_jobs_on_evm")
    adv.MemoryLedger = lambda config, clock: EvmLedger(new_chain(), config, clock=clock)

    class OnChain(adv.JobMachine):
        def teardown(self):
            report = self.ledger.verify()
            assert report.ok, report.problem

    OnChain.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    OnChain.TestCase().runTest()


def test_random_job_sequences_on_the_contract():
    _jobs_on_chain(examples=1, steps=12)


@pytest.mark.slow
def test_random_job_sequences_on_the_contract_many():
    _jobs_on_chain(examples=3 if os.environ.get("DEAI_SMALL") == "1" else 20, steps=30)


def test_job_calldata_outside_the_tx_ranges_is_refused_by_the_contract(hub):
    """A relayer calling the Jobs contract directly (no backend's checks) with a correctly signed
    transaction whose fields the Python types refuse (a repeated accepted executor, a zero window)
    is refused with MalformedTx, so the chain never takes what the reference replay would refuse."""
    from deai.ledger.typed import sign_typed, typed_digest

    relay = hub.w3.eth.accounts[0]
    bad = [
        txs.AcceptResult(job=hash_value("j"), accepted=(B.address, B.address)),
        txs.RegisterJob(
            job=hash_value("j"),
            task=None,
            job_type="aggregate",
            inputs=(),
            fee=1,
            executors=1,
            replication=hash_value("r"),
            commit_window_ms=0,
            reveal_window_ms=1_000,
        ),
    ]
    for tx in bad:
        sig = sign_typed(A, typed_digest(tx, A.address, 0, "deai-test"))
        fn = getattr(hub.jobs.functions, tx.kind)
        with pytest.raises(Exception, match="MalformedTx"):
            fn(A.address, 0, *abi_args(tx), sig[64], sig[:32], sig[32:64]).call({"from": relay})
    assert hub.nonce(A.address) == 0
