# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title deai ledger: funds, stakes, unbonding, reputation, tasks, payout roots and claims
@notice The same state machine as the Python rules in deai.ledger.rules (funds.py, tasks.py):
    same checks in the same order, same events. Every state-changing function is a meta-transaction:
    ``sender`` signed an EIP-712 digest of (kind, sender, nonce, fields) with the domain
    {name: "deai", version: "1", salt: keccak256(network)}, so whoever relays it (a hub, a coordinator,
    the sender itself) pays the gas and can neither forge nor alter it. A refused transaction reverts
    with the name of the matching deai.ledger.errors class and changes nothing, its nonce included.
    Per-round work is O(1): one ``checkpoint`` and one ``post_payout_root`` whatever the number of
    members; each payee claims its own leaf with a Merkle proof.
"""

MAX_AMOUNT: constant(uint256) = 2**53 - 1
REPUTATION_BOUND: constant(int256) = 1_000_000
OPEN: constant(uint8) = 1
CLOSED: constant(uint8) = 2

DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,bytes32 salt)")
MINT_T: constant(bytes32) = keccak256("Mint(address sender,uint256 nonce,address to,uint256 amount)")
TRANSFER_T: constant(bytes32) = keccak256("Transfer(address sender,uint256 nonce,address to,uint256 amount)")
STAKE_T: constant(bytes32) = keccak256("Stake(address sender,uint256 nonce,uint8 role,uint256 amount)")
UNSTAKE_T: constant(bytes32) = keccak256("Unstake(address sender,uint256 nonce,uint8 role,uint256 amount)")
WITHDRAW_T: constant(bytes32) = keccak256("Withdraw(address sender,uint256 nonce,uint8 role)")
SLASH_T: constant(bytes32) = keccak256(
    "Slash(address sender,uint256 nonce,address account,uint8 role,uint256 amount,string reason)"
)
REPUTATION_T: constant(bytes32) = keccak256(
    "UpdateReputation(address sender,uint256 nonce,address account,uint8 role,int256 delta,string reason)"
)
CREATE_TASK_T: constant(bytes32) = keccak256(
    "CreateTask(address sender,uint256 nonce,bytes32 task,uint256 budget,bytes32 params,uint256 provider_stake,address coordinator)"
)
JOIN_TASK_T: constant(bytes32) = keccak256("JoinTask(address sender,uint256 nonce,bytes32 task,uint8 role)")
CHECKPOINT_T: constant(bytes32) = keccak256(
    "PostCheckpoint(address sender,uint256 nonce,bytes32 task,uint256 round,bytes32 checkpoint)"
)
PAYOUT_T: constant(bytes32) = keccak256(
    "PostPayoutRoot(address sender,uint256 nonce,bytes32 task,uint256 epoch,bytes32 root,uint256 total,bytes32 job)"
)
CLAIM_T: constant(bytes32) = keccak256(
    "ClaimPayout(address sender,uint256 nonce,bytes32 task,uint256 epoch,uint256 amount,bytes32[] proof)"
)
SLASH_MEMBER_T: constant(bytes32) = keccak256(
    "SlashMember(address sender,uint256 nonce,bytes32 task,address account,uint256 amount,string reason)"
)
CLOSE_TASK_T: constant(bytes32) = keccak256("CloseTask(address sender,uint256 nonce,bytes32 task)")
LEAVE_TASK_T: constant(bytes32) = keccak256("LeaveTask(address sender,uint256 nonce,bytes32 task)")
CANCEL_TASK_T: constant(bytes32) = keccak256("CancelTask(address sender,uint256 nonce,bytes32 task)")
REGISTER_MODEL_T: constant(bytes32) = keccak256(
    "RegisterModel(address sender,uint256 nonce,bytes32 model,bytes32 task,bytes32 provenance,bytes32 document,uint256 total_shares,uint256 host_bps)"
)
PAY_FEE_T: constant(bytes32) = keccak256(
    "PayInferenceFee(address sender,uint256 nonce,bytes32 model,uint256 amount,address[] hosts)"
)
CLAIM_ROYALTY_T: constant(bytes32) = keccak256(
    "ClaimRoyalty(address sender,uint256 nonce,bytes32 model,uint256 shares,bytes32[] proof)"
)
HOST_ROLE: constant(uint8) = 2
BPS: constant(uint256) = 10_000


interface Jobs:
    def on_stake(account: address, role: uint8): nonpayable
    def payout_check(job: bytes32, task: bytes32, root: bytes32) -> uint8: view

# -- events (names and fields as the Python rules emit them) -----------------------------------------

event Applied:
    height: uint256
    sender: indexed(address)
    nonce: uint256
    time: uint256
    head: bytes32

event Minted:
    to: address
    amount: uint256

event Transferred:
    sender: address
    to: address
    amount: uint256

event Staked:
    account: address
    role: uint8
    amount: uint256
    stake: uint256

event Unstaked:
    account: address
    role: uint8
    amount: uint256
    release: uint256

event Withdrawn:
    account: address
    role: uint8
    amount: uint256

event Slashed:
    account: address
    role: uint8
    amount: uint256
    reason: String[64]
    job: bytes32

event Reputation:
    account: address
    role: uint8
    delta: int256
    score: int256
    reason: String[64]

event TaskCreated:
    task: bytes32
    creator: address
    coordinator: address
    budget: uint256

event TaskJoined:
    task: bytes32
    account: address
    role: uint8
    stake: uint256

event Checkpoint:
    task: bytes32
    round: uint256
    checkpoint: bytes32

event PayoutPosted:
    task: bytes32
    epoch: uint256
    root: bytes32
    total: uint256
    job: bytes32

event Claimed:
    task: bytes32
    epoch: uint256
    account: address
    amount: uint256

event MemberSlashed:
    task: bytes32
    account: address
    amount: uint256
    reason: String[64]

event TaskClosed:
    task: bytes32
    refund: uint256
    creator: address

event TaskCancelled:
    task: bytes32
    refund: uint256
    creator: address

event TaskLeft:
    task: bytes32
    account: address
    refund: uint256

event ModelRegistered:
    model: bytes32
    owner: address
    task: bytes32
    provenance: bytes32

event InferencePaid:
    model: bytes32
    payer: address
    hosts: DynArray[address, 64]
    per_host: uint256
    royalty: uint256

event RoyaltyClaimed:
    model: bytes32
    account: address
    shares: uint256
    amount: uint256

# -- records -------------------------------------------------------------------------------------------

struct Task:
    creator: address
    coordinator: address
    budget: uint256
    params: bytes32
    provider_stake: uint256
    round: uint256
    members: uint256
    status: uint8

struct Member:
    role: uint8
    stake: uint256
    joined: bool

struct Model:
    owner: address
    task: bytes32
    provenance: bytes32
    document: bytes32
    total_shares: uint256
    host_bps: uint256
    index: uint256
    carry: uint256
    pool: uint256
    registered: bool

struct Payout:
    root: bytes32
    total: uint256
    claimed: uint256
    job: bytes32
    posted: bool

# -- configuration (the genesis) ------------------------------------------------------------------------

genesis: public(immutable(bytes32))  # NetworkConfig.genesis_hash: binds this deployment to one config
domain_separator: public(immutable(bytes32))
minter: public(immutable(address))
oracle: public(immutable(address))
slasher: public(immutable(address))
min_stake: public(immutable(uint256[3]))
unbonding_delay: public(immutable(uint256))
time_origin: public(immutable(uint256))  # ledger ms = (block.timestamp - time_origin) * time_num // time_den
time_num: public(immutable(uint256))
time_den: public(immutable(uint256))
deployed_at: public(immutable(uint256))  # the block of the deployment: where log followers start
jobs: public(immutable(address))  # the Jobs contract: the only caller of begin and job_op

# -- state ----------------------------------------------------------------------------------------------

height: public(uint256)
head: public(bytes32)
clock: public(uint256)
minted: public(uint256)
burned: public(uint256)
total_balances: public(uint256)
total_stakes: public(uint256)
total_unbonding: public(uint256)
total_task_escrow: public(uint256)
total_task_stakes: public(uint256)
total_unclaimed: public(uint256)
total_royalty_pools: public(uint256)
total_job_escrow: public(uint256)

balances: public(HashMap[address, uint256])
nonces: public(HashMap[address, uint256])
stakes: public(HashMap[address, HashMap[uint8, uint256]])
unbonding_amount: public(HashMap[address, HashMap[uint8, uint256]])
unbonding_release: public(HashMap[address, HashMap[uint8, uint256]])
locks: public(HashMap[address, HashMap[uint8, uint256]])
memberships: public(HashMap[address, HashMap[uint8, uint256]])
reputation: public(HashMap[address, HashMap[uint8, int256]])
tasks: public(HashMap[bytes32, Task])
members: public(HashMap[bytes32, HashMap[address, Member]])
checkpoints: public(HashMap[bytes32, HashMap[uint256, bytes32]])
payouts: public(HashMap[bytes32, HashMap[uint256, Payout]])
claims: public(HashMap[bytes32, HashMap[uint256, HashMap[address, uint256]]])
models: public(HashMap[bytes32, Model])
royalty_index: public(HashMap[bytes32, HashMap[address, uint256]])


@deploy
def __init__(
    _genesis: bytes32,
    salt: bytes32,
    _minter: address,
    _oracle: address,
    _slasher: address,
    _min_stake: uint256[3],
    _unbonding_delay: uint256,
    _time_origin: uint256,
    _time_num: uint256,
    _time_den: uint256,
    _jobs: address,
):
    assert _time_num > 0 and _time_den > 0 and _time_origin <= block.timestamp
    genesis = _genesis
    domain_separator = keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256("deai"), keccak256("1"), salt))
    minter = _minter
    oracle = _oracle
    slasher = _slasher
    min_stake = _min_stake
    unbonding_delay = _unbonding_delay
    time_origin = _time_origin
    time_num = _time_num
    deployed_at = block.number
    time_den = _time_den
    jobs = _jobs
    self.head = _genesis


# -- the envelope of every transaction ----------------------------------------------------------------------


@internal
def _begin(sender: address, nonce: uint256, struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> uint256:
    """Check the signature and nonce, advance the log; returns the ledger time (ms)."""
    digest: bytes32 = keccak256(concat(b"\x19\x01", domain_separator, struct_hash))
    signer: address = ecrecover(digest, v, r, s)
    if signer == empty(address) or signer != sender:
        raise "BadTxSignature"
    expected: uint256 = self.nonces[sender]
    if nonce < expected:
        raise "ReplayedNonce"
    if nonce > expected:
        raise "BadNonce"
    self.nonces[sender] = expected + 1
    now: uint256 = max((block.timestamp - time_origin) * time_num // time_den, self.clock)
    self.clock = now
    height: uint256 = self.height
    self.height = height + 1
    head: bytes32 = keccak256(concat(self.head, digest))
    self.head = head
    log Applied(height=height, sender=sender, nonce=nonce, time=now, head=head)
    return now


@internal
def _debit(account: address, amount: uint256):
    have: uint256 = self.balances[account]
    if have < amount:
        raise "InsufficientBalance"
    self.balances[account] = have - amount
    self.total_balances -= amount


@internal
def _credit(account: address, amount: uint256):
    value: uint256 = self.balances[account] + amount
    if value > MAX_AMOUNT:
        raise "InvariantViolation"
    self.balances[account] = value
    self.total_balances += amount


@internal
@view
def _check_role(role: uint8):
    if role > 2:
        raise "MalformedTx"


@internal
@view
def _task(task_id: bytes32, open_: bool) -> Task:
    task: Task = self.tasks[task_id]
    if task.status == 0:
        raise "UnknownTask"
    if open_ and task.status != OPEN:
        raise "TaskClosed"
    return task


@internal
@view
def _coordinated(task_id: bytes32, sender: address) -> Task:
    task: Task = self._task(task_id, True)
    if sender != task.coordinator:
        raise "NotAuthorized"
    return task


# -- the narrow interface of the Jobs contract (contracts/Jobs.vy) ------------------------------------------


@external
def begin(sender: address, nonce: uint256, struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> (uint256, bytes32):
    """The envelope of a job transaction: returns its ledger time and the head before it."""
    assert msg.sender == jobs
    head: bytes32 = self.head
    return self._begin(sender, nonce, struct_hash, v, r, s), head


@external
def job_op(op: uint8, account: address, role: uint8, amount: uint256, ref: bytes32):
    """Move what a job rule moves; job escrow, slashed pools and refunds stay in ``total_job_escrow``
    until paid, burned or refunded, so the supply totals still sum to ``minted``."""
    assert msg.sender == jobs
    if op == 0:  # escrow from a balance
        self._debit(account, amount)
        self.total_job_escrow += amount
    elif op == 1:  # escrow from a task's budget (the Jobs contract checked it)
        self.tasks[ref].budget -= amount
        self.total_task_escrow -= amount
        self.total_job_escrow += amount
    elif op == 2:  # pay from the escrow
        self.total_job_escrow -= amount
        self._credit(account, amount)
    elif op == 3:  # a royalty share of a paid fee
        self.total_job_escrow -= amount
        self._accrue_royalty(ref, amount)
    elif op == 4:  # refund to the task's budget, or its creator once closed
        self.total_job_escrow -= amount
        t: Task = self.tasks[ref]
        if t.status == OPEN:
            self.tasks[ref].budget = t.budget + amount
            self.total_task_escrow += amount
        else:
            self._credit(t.creator, amount)
    elif op == 5:
        self.locks[account][role] += 1
    elif op == 6:
        self.locks[account][role] -= 1
    elif op == 7:  # slash into the job's pool
        self.stakes[account][role] -= amount
        self.total_stakes -= amount
        self.total_job_escrow += amount
    elif op == 8:
        self.total_job_escrow -= amount
        self.burned += amount
    else:  # 9: reputation up, 10: down
        delta: int256 = convert(amount, int256)
        if op == 10:
            delta = -delta
        self.reputation[account][role] = max(-REPUTATION_BOUND, min(REPUTATION_BOUND, self.reputation[account][role] + delta))


# -- funds ----------------------------------------------------------------------------------------------


@external
def mint(sender: address, nonce: uint256, to: address, amount: uint256, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(MINT_T, sender, nonce, to, amount)), v, r, s)
    assert amount > 0, "MalformedTx"
    if sender != minter:
        raise "NotAuthorized"
    minted: uint256 = self.minted + amount
    if minted > MAX_AMOUNT:
        raise "SupplyCapExceeded"
    self.minted = minted
    self._credit(to, amount)
    log Minted(to=to, amount=amount)


@external
def transfer(sender: address, nonce: uint256, to: address, amount: uint256, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(TRANSFER_T, sender, nonce, to, amount)), v, r, s)
    assert amount > 0, "MalformedTx"
    self._debit(sender, amount)
    self._credit(to, amount)
    log Transferred(sender=sender, to=to, amount=amount)


@external
def stake(sender: address, nonce: uint256, role: uint8, amount: uint256, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(STAKE_T, sender, nonce, role, amount)), v, r, s)
    self._check_role(role)
    assert amount > 0, "MalformedTx"
    new: uint256 = self.stakes[sender][role] + amount
    if new < min_stake[role]:
        raise "StakeBelowMinimum"
    self._debit(sender, amount)
    self.stakes[sender][role] = new
    self.total_stakes += amount
    extcall Jobs(jobs).on_stake(sender, role)
    log Staked(account=sender, role=role, amount=amount, stake=new)


@external
def unstake(sender: address, nonce: uint256, role: uint8, amount: uint256, v: uint8, r: bytes32, s: bytes32):
    now: uint256 = self._begin(sender, nonce, keccak256(abi_encode(UNSTAKE_T, sender, nonce, role, amount)), v, r, s)
    self._check_role(role)
    assert amount > 0, "MalformedTx"
    have: uint256 = self.stakes[sender][role]
    if amount > have:
        raise "InsufficientStake"
    if self.locks[sender][role] > 0 or self.memberships[sender][role] > 0:
        raise "StakeLocked"
    rest: uint256 = have - amount
    if rest > 0 and rest < min_stake[role]:
        raise "StakeBelowMinimum"
    self.stakes[sender][role] = rest
    self.total_stakes -= amount
    release: uint256 = now + unbonding_delay
    self.unbonding_amount[sender][role] += amount
    self.unbonding_release[sender][role] = release
    self.total_unbonding += amount
    log Unstaked(account=sender, role=role, amount=amount, release=release)


@external
def withdraw(sender: address, nonce: uint256, role: uint8, v: uint8, r: bytes32, s: bytes32):
    now: uint256 = self._begin(sender, nonce, keccak256(abi_encode(WITHDRAW_T, sender, nonce, role)), v, r, s)
    self._check_role(role)
    amount: uint256 = self.unbonding_amount[sender][role]
    if amount == 0:
        raise "NothingToWithdraw"
    if now < self.unbonding_release[sender][role]:
        raise "StillUnbonding"
    self.unbonding_amount[sender][role] = 0
    self.unbonding_release[sender][role] = 0
    self.total_unbonding -= amount
    self._credit(sender, amount)
    log Withdrawn(account=sender, role=role, amount=amount)


@external
def slash(
    sender: address, nonce: uint256, account: address, role: uint8, amount: uint256, reason: String[64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(abi_encode(SLASH_T, sender, nonce, account, role, amount, keccak256(reason)))
    self._begin(sender, nonce, struct_hash, v, r, s)
    self._check_role(role)
    assert amount > 0, "MalformedTx"
    if sender != slasher:
        raise "NotAuthorized"
    have: uint256 = self.stakes[account][role]
    if amount > have:
        raise "InsufficientStake"
    self.stakes[account][role] = have - amount
    self.total_stakes -= amount
    self.burned += amount
    log Slashed(account=account, role=role, amount=amount, reason=reason, job=empty(bytes32))


@external
def update_reputation(
    sender: address, nonce: uint256, account: address, role: uint8, delta: int256, reason: String[64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(REPUTATION_T, sender, nonce, account, role, delta, keccak256(reason))
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    self._check_role(role)
    assert delta >= -1_000_000 and delta <= 1_000_000, "MalformedTx"
    if sender != oracle:
        raise "NotAuthorized"
    score: int256 = max(-REPUTATION_BOUND, min(REPUTATION_BOUND, self.reputation[account][role] + delta))
    self.reputation[account][role] = score
    log Reputation(account=account, role=role, delta=delta, score=score, reason=reason)


# -- tasks ----------------------------------------------------------------------------------------------


@external
def create_task(
    sender: address, nonce: uint256, task: bytes32, budget: uint256, params: bytes32, provider_stake: uint256,
    coordinator: address, v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(CREATE_TASK_T, sender, nonce, task, budget, params, provider_stake, coordinator)
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert budget <= MAX_AMOUNT and provider_stake <= MAX_AMOUNT, "MalformedTx"
    if self.tasks[task].status != 0:
        raise "DuplicateEntity"
    self._debit(sender, budget)
    coord: address = coordinator
    if coord == empty(address):
        coord = sender
    self.tasks[task] = Task(
        creator=sender, coordinator=coord, budget=budget, params=params, provider_stake=provider_stake,
        round=0, members=0, status=OPEN,
    )
    self.total_task_escrow += budget
    log TaskCreated(task=task, creator=sender, coordinator=coord, budget=budget)


@external
def join_task(sender: address, nonce: uint256, task: bytes32, role: uint8, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(JOIN_TASK_T, sender, nonce, task, role)), v, r, s)
    self._check_role(role)
    t: Task = self._task(task, True)
    if self.members[task][sender].joined:
        raise "AlreadyMember"
    staked: uint256 = self.stakes[sender][role]
    if staked < min_stake[role] or staked == 0:
        raise "StakeBelowMinimum"
    self._debit(sender, t.provider_stake)
    self.members[task][sender] = Member(role=role, stake=t.provider_stake, joined=True)
    self.total_task_stakes += t.provider_stake
    self.memberships[sender][role] += 1
    self.tasks[task].members = t.members + 1
    log TaskJoined(task=task, account=sender, role=role, stake=t.provider_stake)


@external
def checkpoint(
    sender: address, nonce: uint256, task: bytes32, round: uint256, checkpoint: bytes32,
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(abi_encode(CHECKPOINT_T, sender, nonce, task, round, checkpoint))
    self._begin(sender, nonce, struct_hash, v, r, s)
    t: Task = self._coordinated(task, sender)
    if round != t.round + 1:
        raise "BadRound"
    self.checkpoints[task][round] = checkpoint
    self.tasks[task].round = round
    log Checkpoint(task=task, round=round, checkpoint=checkpoint)


@external
def post_payout_root(
    sender: address, nonce: uint256, task: bytes32, epoch: uint256, root: bytes32, total: uint256, job: bytes32,
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(abi_encode(PAYOUT_T, sender, nonce, task, epoch, root, total, job))
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert total > 0 and total <= MAX_AMOUNT, "MalformedTx"
    t: Task = self._coordinated(task, sender)
    if self.payouts[task][epoch].posted:
        raise "DuplicateEntity"
    if total > t.budget:
        raise "InsufficientEscrow"
    if job != empty(bytes32):
        check: uint8 = staticcall Jobs(jobs).payout_check(job, task, root)
        if check == 1:
            raise "UnknownJob"
        if check == 2:
            raise "JobError"
    self.tasks[task].budget = t.budget - total
    self.total_task_escrow -= total
    self.payouts[task][epoch] = Payout(root=root, total=total, claimed=0, job=job, posted=True)
    self.total_unclaimed += total
    log PayoutPosted(task=task, epoch=epoch, root=root, total=total, job=job)


@internal
@pure
def _verify_proof(leaf: bytes32, proof: DynArray[bytes32, 64], root: bytes32) -> bool:
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(node, uint256) <= convert(sibling, uint256):
            node = keccak256(concat(b"\x01", node, sibling))
        else:
            node = keccak256(concat(b"\x01", sibling, node))
    return node == root


@internal
@pure
def _hash_list(items: DynArray[bytes32, 64]) -> bytes32:
    """EIP-712 hash of a bytes32[]: keccak256 of the items concatenated."""
    if len(items) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(items), 64, 32 * len(items)))


@external
def claim(
    sender: address, nonce: uint256, task: bytes32, epoch: uint256, amount: uint256, proof: DynArray[bytes32, 64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(CLAIM_T, sender, nonce, task, epoch, amount, self._hash_list(proof))
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert amount > 0 and amount <= MAX_AMOUNT, "MalformedTx"
    p: Payout = self.payouts[task][epoch]
    if not p.posted:
        raise "UnknownPayout"
    if self.claims[task][epoch][sender] != 0:
        raise "DoubleClaim"
    leaf: bytes32 = keccak256(concat(b"\x00", convert(sender, bytes20), convert(amount, bytes32)))
    if not self._verify_proof(leaf, proof, p.root):
        raise "BadProof"
    if p.claimed + amount > p.total:
        raise "PoolExhausted"
    self.claims[task][epoch][sender] = amount
    self.payouts[task][epoch].claimed = p.claimed + amount
    self.total_unclaimed -= amount
    self._credit(sender, amount)
    log Claimed(task=task, epoch=epoch, account=sender, amount=amount)


@external
def slash_member(
    sender: address, nonce: uint256, task: bytes32, account: address, amount: uint256, reason: String[64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(SLASH_MEMBER_T, sender, nonce, task, account, amount, keccak256(reason))
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert amount > 0, "MalformedTx"
    t: Task = self._coordinated(task, sender)
    m: Member = self.members[task][account]
    if not m.joined:
        raise "NotAMember"
    if amount > m.stake:
        raise "InsufficientStake"
    self.members[task][account].stake = m.stake - amount
    self.total_task_stakes -= amount
    self.tasks[task].budget = t.budget + amount
    self.total_task_escrow += amount
    log MemberSlashed(task=task, account=account, amount=amount, reason=reason)


@external
def close_task(sender: address, nonce: uint256, task: bytes32, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(CLOSE_TASK_T, sender, nonce, task)), v, r, s)
    t: Task = self._coordinated(task, sender)
    self.tasks[task].budget = 0
    self.tasks[task].status = CLOSED
    self.total_task_escrow -= t.budget
    self._credit(t.creator, t.budget)
    log TaskClosed(task=task, refund=t.budget, creator=t.creator)


@external
def leave_task(sender: address, nonce: uint256, task: bytes32, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(LEAVE_TASK_T, sender, nonce, task)), v, r, s)
    t: Task = self._task(task, False)
    if t.status == OPEN:
        raise "TaskStillOpen"
    m: Member = self.members[task][sender]
    if not m.joined:
        raise "NotAMember"
    self.members[task][sender] = empty(Member)
    self.memberships[sender][m.role] -= 1
    self.total_task_stakes -= m.stake
    self._credit(sender, m.stake)
    log TaskLeft(task=task, account=sender, refund=m.stake)


@external
def cancel_task(sender: address, nonce: uint256, task: bytes32, v: uint8, r: bytes32, s: bytes32):
    self._begin(sender, nonce, keccak256(abi_encode(CANCEL_TASK_T, sender, nonce, task)), v, r, s)
    t: Task = self._task(task, True)
    if sender != t.creator:
        raise "NotAuthorized"
    if t.members > 0:
        raise "TaskHasMembers"
    self.tasks[task].budget = 0
    self.tasks[task].status = CLOSED
    self.total_task_escrow -= t.budget
    self._credit(t.creator, t.budget)
    log TaskCancelled(task=task, refund=t.budget, creator=t.creator)


# -- models -------------------------------------------------------------------------------------------

HEX: constant(Bytes[16]) = b"0123456789abcdef"


@internal
@pure
def _hex_word(word: uint256, chars: uint256) -> uint256:
    """The low ``chars / 2`` bytes of ``word`` as ``chars`` lowercase hex ASCII characters."""
    out: uint256 = 0
    for i: uint256 in range(chars, bound=32):
        nibble: uint256 = (word >> (4 * (chars - 1 - i))) & 15
        out = (out << 8) | convert(convert(slice(HEX, nibble, 1), bytes1), uint256)
    return out


@internal
@pure
def _hex32(x: bytes32) -> Bytes[66]:
    v: uint256 = convert(x, uint256)
    high: uint256 = self._hex_word(v >> 128, 32)
    low: uint256 = self._hex_word(v & (2**128 - 1), 32)
    return concat(b"0x", convert(high, bytes32), convert(low, bytes32))


@internal
@pure
def _checksummed(a: address) -> Bytes[42]:
    """EIP-55: the address in hex, a letter upper-cased where keccak256(lowercase hex) has a nibble >= 8."""
    v: uint256 = convert(a, uint256)
    high: uint256 = self._hex_word(v >> 32, 32)  # the first 32 characters
    low: uint256 = self._hex_word(v & (2**32 - 1), 8)  # the last 8
    lower: Bytes[40] = concat(convert(high, bytes32), slice(convert(low << 192, bytes32), 0, 8))
    h: uint256 = convert(keccak256(lower), uint256)
    for i: uint256 in range(40):
        if (h >> (252 - 4 * i)) & 15 >= 8:
            if i < 32:
                bits: uint256 = 8 * (31 - i)
                if (high >> bits) & 255 >= 97:
                    high -= 32 << bits
            else:
                bits: uint256 = 8 * (39 - i)
                if (low >> bits) & 255 >= 97:
                    low -= 32 << bits
    return concat(b"0x", convert(high, bytes32), slice(convert(low << 192, bytes32), 0, 8))


@internal
@pure
def _model_id(registrant: address, task: bytes32, document: bytes32) -> bytes32:
    """deai.ledger.commitments.model_id: SHA-256 of the canonical JSON of the registration."""
    head: Bytes[151] = concat(
        b'{"deai-model":{"document":"', self._hex32(document), b'","registrant":"', self._checksummed(registrant)
    )
    if task == empty(bytes32):
        return sha256(concat(head, b'","task":null}}'))
    return sha256(concat(head, b'","task":"', self._hex32(task), b'"}}'))


@external
def register_model(
    sender: address, nonce: uint256, model: bytes32, task: bytes32, provenance: bytes32, document: bytes32,
    total_shares: uint256, host_bps: uint256, v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(REGISTER_MODEL_T, sender, nonce, model, task, provenance, document, total_shares, host_bps)
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert total_shares > 0 and total_shares <= MAX_AMOUNT and host_bps <= BPS, "MalformedTx"
    if self.models[model].registered:
        raise "DuplicateEntity"
    if task != empty(bytes32):
        t: Task = self._task(task, False)
        if sender != t.coordinator:
            raise "NotAuthorized"
    if model != self._model_id(sender, task, document):
        raise "BadModelId"
    self.models[model] = Model(
        owner=sender, task=task, provenance=provenance, document=document, total_shares=total_shares,
        host_bps=host_bps, index=0, carry=0, pool=0, registered=True,
    )
    log ModelRegistered(model=model, owner=sender, task=task, provenance=provenance)


@internal
def _accrue_royalty(model: bytes32, amount: uint256):
    if amount == 0:
        return
    m: Model = self.models[model]
    carry: uint256 = m.carry + amount
    step: uint256 = carry // m.total_shares
    self.models[model].pool = m.pool + amount
    self.models[model].index = m.index + step
    self.models[model].carry = carry - step * m.total_shares
    self.total_royalty_pools += amount


@internal
@pure
def _hash_addresses(items: DynArray[address, 64]) -> bytes32:
    """EIP-712 hash of an address[]: keccak256 of the items, each padded to 32 bytes."""
    if len(items) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(items), 64, 32 * len(items)))


@external
def pay_inference_fee(
    sender: address, nonce: uint256, model: bytes32, amount: uint256, hosts: DynArray[address, 64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(PAY_FEE_T, sender, nonce, model, amount, self._hash_addresses(hosts))
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert amount > 0 and amount <= MAX_AMOUNT, "MalformedTx"
    m: Model = self.models[model]
    if not m.registered:
        raise "UnknownModel"
    if len(hosts) == 0:
        raise "MalformedTx"
    minimum: uint256 = min_stake[HOST_ROLE]
    for h: address in hosts:
        staked: uint256 = self.stakes[h][HOST_ROLE]
        if staked < minimum or staked == 0:
            raise "StakeBelowMinimum"
    self._debit(sender, amount)
    per_host: uint256 = amount * m.host_bps // BPS // len(hosts)
    for h: address in hosts:
        self._credit(h, per_host)
    royalty: uint256 = amount - per_host * len(hosts)
    self._accrue_royalty(model, royalty)
    log InferencePaid(model=model, payer=sender, hosts=hosts, per_host=per_host, royalty=royalty)


@external
def claim_royalty(
    sender: address, nonce: uint256, model: bytes32, shares: uint256, proof: DynArray[bytes32, 64],
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(CLAIM_ROYALTY_T, sender, nonce, model, shares, self._hash_list(proof))
    )
    self._begin(sender, nonce, struct_hash, v, r, s)
    assert shares > 0 and shares <= MAX_AMOUNT, "MalformedTx"
    m: Model = self.models[model]
    if not m.registered:
        raise "UnknownModel"
    leaf: bytes32 = keccak256(concat(b"\x00", convert(sender, bytes20), convert(shares, bytes32)))
    if not self._verify_proof(leaf, proof, m.provenance):
        raise "BadProof"
    owed: uint256 = shares * (m.index - self.royalty_index[model][sender])
    if owed == 0:
        raise "NothingToClaim"
    if owed > m.pool:
        raise "PoolExhausted"
    self.models[model].pool = m.pool - owed
    self.total_royalty_pools -= owed
    self.royalty_index[model][sender] = m.index
    self._credit(sender, owed)
    log RoyaltyClaimed(model=model, account=sender, shares=shares, amount=owed)
