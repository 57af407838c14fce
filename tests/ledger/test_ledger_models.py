"""Conformance: model provenance, inference fees and royalties (no loop over contributors)."""

from __future__ import annotations

import pytest

from deai.core.accounts import Account
from deai.core.encoding import hash_value
from deai.ledger import (
    COMPUTE,
    HOST,
    errors,
    model_id,
    replication_commitment,
    result_commitment,
    shares_tree,
    txs,
)

DOC = hash_value("doc")
OWNER = Account.from_seed("ledger-tests", 1)  # net.accounts[1] (see conftest)
MODEL = model_id(OWNER.address, None, DOC)  # the id the ledger derives for its registrant


@pytest.fixture
def mnet(net):
    owner = net.accounts[1]
    contributors = net.accounts[2:5]
    tree = shares_tree(
        {contributors[0].address: 5_000, contributors[1].address: 3_000, contributors[2].address: 2_000}
    )
    net.send(
        owner,
        txs.RegisterModel(
            model=MODEL,
            task=None,
            provenance=tree.root,
            document=DOC,
            total_shares=10_000,
            host_bps=4_000,
        ),
    )
    for host in net.accounts[5:7]:
        net.staked(host, HOST, 1_000)
    net.fund(net.accounts[8], 100_000)
    net.tree, net.contributors = tree, contributors
    return net


def claim(net, account, shares):
    return net.send(
        account, txs.ClaimRoyalty(model=MODEL, shares=shares, proof=tuple(net.tree.proof(account.address)))
    )


def test_fee_split_and_claims(mnet):
    ledger, user = mnet.ledger, mnet.accounts[8]
    hosts = (mnet.accounts[5].address, mnet.accounts[6].address)
    mnet.send(user, txs.PayInferenceFee(model=MODEL, amount=10_001, hosts=hosts))
    # hosts share 40% = 4000 (2000 each); royalties 6001 into the pool
    assert [ledger.balance(h) for h in hosts] == [2_000, 2_000]
    model = ledger.model(MODEL)
    assert model.pool == 6_001 and model.index == 0 and model.carry == 6_001
    mnet.send(user, txs.PayInferenceFee(model=MODEL, amount=10_000, hosts=hosts[:1]))
    model = ledger.model(MODEL)
    assert model.pool == 12_001 and model.index == 1 and model.carry == 2_001
    c0, c1, c2 = mnet.contributors
    assert ledger.royalty_owed(MODEL, c0.address, 5_000) == 5_000
    assert claim(mnet, c0, 5_000).event("royalty_claimed").data["amount"] == 5_000
    with pytest.raises(errors.NothingToClaim):
        claim(mnet, c0, 5_000)
    with pytest.raises(errors.BadProof):  # claiming more shares than the leaf holds
        mnet.send(c1, txs.ClaimRoyalty(model=MODEL, shares=5_000, proof=tuple(mnet.tree.proof(c1.address))))
    claim(mnet, c1, 3_000)
    for _ in range(3):
        mnet.send(user, txs.PayInferenceFee(model=MODEL, amount=50_000 // 3, hosts=hosts))
    claim(mnet, c0, 5_000)
    claim(mnet, c2, 2_000)
    claim(mnet, c1, 3_000)
    model = ledger.model(MODEL)
    # everything distributed except the carry (less than one unit per share)
    assert model.pool == model.carry < 10_000
    ledger.check_invariants()


def test_refusals(mnet):
    user = mnet.accounts[8]
    with pytest.raises(errors.UnknownModel):
        mnet.send(
            user, txs.PayInferenceFee(model=hash_value("x"), amount=1, hosts=(mnet.accounts[5].address,))
        )
    with pytest.raises(errors.StakeBelowMinimum):
        mnet.send(user, txs.PayInferenceFee(model=MODEL, amount=1, hosts=(mnet.accounts[9].address,)))
    with pytest.raises(errors.MalformedTx):
        mnet.send(user, txs.PayInferenceFee(model=MODEL, amount=1, hosts=()))
    with pytest.raises(errors.DuplicateEntity):
        mnet.send(
            mnet.accounts[1],
            txs.RegisterModel(
                model=MODEL, task=None, provenance=MODEL, document=DOC, total_shares=1, host_bps=0
            ),
        )
    task = hash_value("task")
    mnet.send(mnet.accounts[1], txs.CreateTask(task=task, budget=0, params=task))
    with pytest.raises(errors.NotAuthorized):  # only the task's coordinator registers its models
        mnet.send(
            user,
            txs.RegisterModel(
                model=task, task=task, provenance=task, document=task, total_shares=1, host_bps=0
            ),
        )


def test_inference_job_routes_royalties(mnet):
    """An inference request as a verified job among hosts: winners' fees pay royalties too."""
    ledger, user = mnet.ledger, mnet.accounts[8]
    job = hash_value("infer-1")
    salt = hash_value("rs")
    mnet.send(
        user,
        txs.RegisterJob(
            job=job,
            task=None,
            job_type="infer",
            inputs=(hash_value("prompt"),),
            fee=1_000,
            executors=2,
            replication=replication_commitment(job, True, 0, salt),
            commit_window_ms=10,
            reveal_window_ms=10,
            role=HOST,
            model=MODEL,
        ),
    )
    executors = ledger.job(job).executors
    by_address = {a.address: a for a in mnet.accounts}
    answer = hash_value("answer")
    for a in executors:
        s = hash_value(a)
        mnet.send(by_address[a], txs.Commit(job=job, commitment=result_commitment(job, a, answer, s)))
    for a in executors:
        mnet.send(by_address[a], txs.Reveal(job=job, digest=answer, salt=hash_value(a)))
    mnet.send(user, txs.RevealReplication(job=job, replicated=True, primary=0, salt=salt))
    r = mnet.send(user, txs.ResolveJob(job=job)).event("job_resolved").data
    assert r["royalty"] == 2 * 600 and r["paid"] == 2 * 400
    assert ledger.model(MODEL).pool == 1_200 and all(ledger.balance(a) == 400 for a in executors)
    assert ledger.stake(executors[0], COMPUTE) == 0
    ledger.check_invariants()
