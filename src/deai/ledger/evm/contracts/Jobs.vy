# pragma version ~=0.4.3
"""
@title deai verified jobs: the executor draw, commit-reveal, hidden sampling, resolution
@notice The same state machine as deai.ledger.rules.jobs: same checks in the same order, same events.
    A second contract because of the 24 kB code size limit: each transaction's envelope (EIP-712
    signature, nonce, clock, the hash-linked head and the ``Applied`` log) is the Ledger contract's
    ``begin``, and funds, stakes, locks and reputation move only through the Ledger's ``job_op``,
    which accepts calls from this contract alone; the Ledger keeps the supply totals (the job escrow
    included), so conservation is checked on one contract.
    The draw reads the providers of a role in the order of their checksummed addresses (the
    reference draw sorts them so): this contract keeps them in a sorted linked list, inserted once
    when a provider first stakes for the role (``on_stake``, called by the Ledger), at most
    MAX_PROVIDERS per role.
"""

MAX_PROVIDERS: constant(uint256) = 1024
MAX_EXECUTORS: constant(uint256) = 64
MAX_AMOUNT: constant(uint256) = 2**53 - 1
BPS: constant(uint256) = 10_000
REFEREED: constant(uint256) = 1
COMPUTE_ROLE: constant(uint8) = 1
HOST_ROLE: constant(uint8) = 2
OPEN: constant(uint8) = 1
HEX: constant(Bytes[16]) = b"0123456789abcdef"

# ops of Ledger.job_op
OP_ESCROW: constant(uint8) = 0
OP_ESCROW_TASK: constant(uint8) = 1
OP_PAY: constant(uint8) = 2
OP_ROYALTY: constant(uint8) = 3
OP_REFUND_TASK: constant(uint8) = 4
OP_LOCK: constant(uint8) = 5
OP_UNLOCK: constant(uint8) = 6
OP_SLASH: constant(uint8) = 7
OP_BURN: constant(uint8) = 8
OP_REP_UP: constant(uint8) = 9
OP_REP_DOWN: constant(uint8) = 10

REGISTER_JOB_T: constant(bytes32) = keccak256(
    "RegisterJob(address sender,uint256 nonce,bytes32 job,bytes32 task,string job_type,bytes32[] inputs,uint256 fee,uint256 executors,bytes32 replication,uint256 commit_window_ms,uint256 reveal_window_ms,uint8 role,address resolver,uint256 quorum,bytes32 model)"
)
COMMIT_T: constant(bytes32) = keccak256("Commit(address sender,uint256 nonce,bytes32 job,bytes32 commitment)")
REVEAL_T: constant(bytes32) = keccak256(
    "Reveal(address sender,uint256 nonce,bytes32 job,bytes32 digest,bytes32 salt)"
)
REVEAL_REPLICATION_T: constant(bytes32) = keccak256(
    "RevealReplication(address sender,uint256 nonce,bytes32 job,bool replicated,uint256 primary,bytes32 salt)"
)
RESOLVE_JOB_T: constant(bytes32) = keccak256("ResolveJob(address sender,uint256 nonce,bytes32 job)")
ACCEPT_RESULT_T: constant(bytes32) = keccak256(
    "AcceptResult(address sender,uint256 nonce,bytes32 job,address[] accepted)"
)


struct Task:
    creator: address
    coordinator: address
    budget: uint256
    params: bytes32
    provider_stake: uint256
    round: uint256
    members: uint256
    status: uint8


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


interface Ledger:
    def begin(
        sender: address, nonce: uint256, struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32
    ) -> (uint256, bytes32): nonpayable
    def job_op(op: uint8, account: address, role: uint8, amount: uint256, ref: bytes32): nonpayable
    def stakes(account: address, role: uint8) -> uint256: view
    def reputation(account: address, role: uint8) -> int256: view
    def tasks(task: bytes32) -> Task: view
    def models(model: bytes32) -> Model: view
    def min_stake(i: uint256) -> uint256: view


struct Job:
    creator: address
    task: bytes32
    fee: uint256
    escrow: uint256
    role: uint8
    seed: bytes32
    replication: bytes32
    commit_deadline: uint256
    reveal_deadline: uint256
    resolver: address
    quorum: uint256
    model: bytes32
    commits: uint256
    reveals: uint256
    replicated: uint8  # 0: not revealed, 1: no, 2: yes
    primary: uint256
    status: uint8  # 0: none, 1: open, 2: accepted, 3: no_majority, 4: failed, 5: abandoned
    digest: bytes32


struct Duty:
    commitment: bytes32
    digest: bytes32
    committed: bool
    revealed: bool


event JobRegistered:
    job: bytes32
    creator: address
    task: bytes32
    executors: DynArray[address, MAX_EXECUTORS]
    fee: uint256
    commit_deadline: uint256
    reveal_deadline: uint256

event Committed:
    job: bytes32
    executor: address
    commitment: bytes32

event Revealed:
    job: bytes32
    executor: address
    digest: bytes32

event ReplicationRevealed:
    job: bytes32
    replicated: bool
    primary: uint256

event Slashed:
    account: address
    role: uint8
    amount: uint256
    reason: String[64]
    job: bytes32

event JobResolved:
    job: bytes32
    status: String[16]
    digest: bytes32
    accepted: DynArray[address, MAX_EXECUTORS]
    faulted: DynArray[address, MAX_EXECUTORS]
    missed: DynArray[address, MAX_EXECUTORS]
    paid: uint256
    royalty: uint256
    slash_reward: uint256
    burned: uint256
    refund: uint256


ledger: public(address)  # bound once, right after the Ledger's deployment (it names this contract)
deployer: immutable(address)
stake_fee_ratio_bps: public(immutable(uint256))
min_job_fee: public(immutable(uint256))
max_job_window_ms: public(immutable(uint256))
max_executors: public(immutable(uint256))
resolve_grace_ms: public(immutable(uint256))
slash_bps: public(immutable(uint256))
slash_reward_bps: public(immutable(uint256))
rep_step_bps: public(immutable(int256))
rep_min_bps: public(immutable(int256))
rep_max_bps: public(immutable(int256))
rep_job_win: public(immutable(int256))
rep_job_fault: public(immutable(int256))
resolvers: public(immutable(DynArray[address, 16]))

jobs: public(HashMap[bytes32, Job])
executors: public(HashMap[bytes32, DynArray[address, MAX_EXECUTORS]])
duties: public(HashMap[bytes32, HashMap[address, Duty]])
next_provider: public(HashMap[uint8, HashMap[address, address]])  # sorted list; empty() is its head
providers: public(HashMap[uint8, uint256])
listed: HashMap[address, HashMap[uint8, bool]]
key_hi: HashMap[address, uint256]
key_lo: HashMap[address, uint256]


@deploy
def __init__(
    params: uint256[7], rep: int256[5], _resolvers: DynArray[address, 16]
):
    """params: stake_fee_ratio_bps, min_job_fee, max_job_window_ms, max_executors, resolve_grace_ms,
    slash_bps, slash_reward_bps; rep: rep_step_bps, rep_min_bps, rep_max_bps, rep_job_win, rep_job_fault."""
    assert params[3] <= MAX_EXECUTORS
    deployer = msg.sender
    stake_fee_ratio_bps = params[0]
    min_job_fee = params[1]
    max_job_window_ms = params[2]
    max_executors = params[3]
    resolve_grace_ms = params[4]
    slash_bps = params[5]
    slash_reward_bps = params[6]
    rep_step_bps = rep[0]
    rep_min_bps = rep[1]
    rep_max_bps = rep[2]
    rep_job_win = rep[3]
    rep_job_fault = rep[4]
    resolvers = _resolvers


@external
def bind(_ledger: address):
    """Name the Ledger contract (once, by the deployer)."""
    assert msg.sender == deployer and self.ledger == empty(address)
    self.ledger = _ledger


@external
@view
def job_view(job_id: bytes32) -> (Job, DynArray[address, MAX_EXECUTORS], DynArray[Duty, MAX_EXECUTORS]):
    """A job, its drawn executors in draw order and their duties (in the same order), in one call."""
    drawn: DynArray[address, MAX_EXECUTORS] = self.executors[job_id]
    duties: DynArray[Duty, MAX_EXECUTORS] = []
    for e: address in drawn:
        duties.append(self.duties[job_id][e])
    return self.jobs[job_id], drawn, duties


# -- the provider list (sorted like the reference draw: by checksummed address) ---------------------------


@internal
@pure
def _hex_word(word: uint256, chars: uint256) -> uint256:
    out: uint256 = 0
    for i: uint256 in range(chars, bound=32):
        nibble: uint256 = (word >> (4 * (chars - 1 - i))) & 15
        out = (out << 8) | convert(convert(slice(HEX, nibble, 1), bytes1), uint256)
    return out


@internal
@pure
def _checksum_key(a: address) -> (uint256, uint256):
    """The EIP-55 form of ``a`` as two words (its first 32 and last 8 hex characters): comparing
    the pairs compares the checksummed strings."""
    v: uint256 = convert(a, uint256)
    high: uint256 = self._hex_word(v >> 32, 32)
    low: uint256 = self._hex_word(v & (2**32 - 1), 8)
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
    return high, low


@external
def on_stake(account: address, role: uint8):
    """The Ledger calls this when ``account`` stakes for ``role``: list it once, in order."""
    assert msg.sender == self.ledger
    if role == 0 or self.listed[account][role]:
        return
    n: uint256 = self.providers[role]
    if n >= MAX_PROVIDERS:
        raise "TooManyProviders"
    hi: uint256 = 0
    lo: uint256 = 0
    hi, lo = self._checksum_key(account)
    prev: address = empty(address)
    for i: uint256 in range(MAX_PROVIDERS):
        cur: address = self.next_provider[role][prev]
        if cur == empty(address):
            break
        chi: uint256 = self.key_hi[cur]
        if chi > hi or (chi == hi and self.key_lo[cur] > lo):
            break
        prev = cur
    self.next_provider[role][account] = self.next_provider[role][prev]
    self.next_provider[role][prev] = account
    self.listed[account][role] = True
    self.key_hi[account] = hi
    self.key_lo[account] = lo
    self.providers[role] = n + 1


@external
@view
def payout_check(job_id: bytes32, task: bytes32, root: bytes32) -> uint8:
    """For the Ledger's post_payout_root: 0 if ``job_id`` is an accepted job of ``task`` whose
    majority result is ``root``, 1 if there is no such job, 2 otherwise."""
    job: Job = self.jobs[job_id]
    if job.status == 0:
        return 1
    if job.task != task or job.status != 2 or job.digest != root or job.digest == empty(bytes32):
        return 2
    return 0


# -- helpers ------------------------------------------------------------------------------------------------


@internal
def _begin(sender: address, nonce: uint256, struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> (uint256, bytes32):
    return extcall Ledger(self.ledger).begin(sender, nonce, struct_hash, v, r, s)


@internal
def _op(op: uint8, account: address, role: uint8, amount: uint256, ref: bytes32):
    extcall Ledger(self.ledger).job_op(op, account, role, amount, ref)


@internal
@view
def _min_executor_stake(role: uint8, fee: uint256) -> uint256:
    by_fee: uint256 = (fee * stake_fee_ratio_bps + BPS - 1) // BPS
    return max(max(staticcall Ledger(self.ledger).min_stake(convert(role, uint256)), by_fee), 1)


@internal
@view
def _weight(account: address, role: uint8, staked: uint256) -> uint256:
    score: int256 = staticcall Ledger(self.ledger).reputation(account, role)
    factor: int256 = max(rep_min_bps, min(rep_max_bps, 10_000 + score * rep_step_bps))
    return staked * convert(factor, uint256) // BPS


@internal
@view
def _open_job(job_id: bytes32) -> Job:
    job: Job = self.jobs[job_id]
    if job.status == 0:
        raise "UnknownJob"
    if job.status != OPEN:
        raise "JobNotResolvable"
    return job


@internal
@view
def _is_executor(job_id: bytes32, a: address) -> bool:
    for e: address in self.executors[job_id]:
        if e == a:
            return True
    return False


@internal
@pure
def _has(items: DynArray[address, MAX_EXECUTORS], a: address) -> bool:
    for e: address in items:
        if e == a:
            return True
    return False


@internal
@view
def _reveals_open(job: Job, now: uint256, n: uint256) -> bool:
    return now >= job.commit_deadline or job.commits == n


@internal
@view
def _required(job_id: bytes32, job: Job) -> DynArray[address, MAX_EXECUTORS]:
    if job.replicated == 0:
        raise "JobNotResolvable"
    if job.replicated == 2:
        return self.executors[job_id]
    return [self.executors[job_id][job.primary]]


@internal
@pure
def _quorum(job: Job, required: uint256) -> uint256:
    if required == 1 or job.quorum == REFEREED:
        return 1
    return max(job.quorum, required // 2 + 1)


@internal
@view
def _revealed(job_id: bytes32, job: Job, required: DynArray[address, MAX_EXECUTORS], now: uint256) -> DynArray[address, MAX_EXECUTORS]:
    out: DynArray[address, MAX_EXECUTORS] = []
    for e: address in required:
        if self.duties[job_id][e].revealed:
            out.append(e)
    if len(out) < len(required) and now < job.reveal_deadline:
        raise "JobNotResolvable"
    return out


# -- registration and the draw --------------------------------------------------------------------------


@internal
@pure
def _hash_hashes(items: DynArray[bytes32, 256]) -> bytes32:
    if len(items) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(items), 64, 32 * len(items)))


@internal
@pure
def _hash_addresses(items: DynArray[address, 256]) -> bytes32:
    if len(items) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(items), 64, 32 * len(items)))


@internal
def _check_registration(
    job_type: String[256], fee: uint256, executors: uint256, commit_window_ms: uint256,
    reveal_window_ms: uint256, role: uint8, resolver: address, quorum: uint256, model: bytes32,
):
    if role != COMPUTE_ROLE and role != HOST_ROLE:
        raise "JobError"
    if role == HOST_ROLE and model == empty(bytes32):
        raise "JobError"
    if model != empty(bytes32) and not (staticcall Ledger(self.ledger).models(model)).registered:
        raise "UnknownModel"
    if fee < min_job_fee:
        raise "JobError"
    if commit_window_ms > max_job_window_ms or reveal_window_ms > max_job_window_ms:
        raise "JobError"
    if executors > max_executors:
        raise "JobError"
    refereed: bool = quorum == REFEREED and resolver != empty(address) and keccak256(job_type) == keccak256("train_steps")
    if quorum != 0 and not refereed and not (executors // 2 < quorum and quorum <= executors):
        raise "JobError"
    if fee * executors > MAX_AMOUNT:
        raise "JobError"


@internal
def _draw(sender: address, role: uint8, fee: uint256, k: uint256, seed: bytes32) -> DynArray[address, MAX_EXECUTORS]:
    """deai.ledger.draw.draw_executors over the eligible providers, in checksummed-address order."""
    minimum: uint256 = self._min_executor_stake(role, fee)
    pool: DynArray[address, MAX_PROVIDERS] = []
    weights: DynArray[uint256, MAX_PROVIDERS] = []
    eligible: uint256 = 0
    total: uint256 = 0
    cur: address = self.next_provider[role][empty(address)]
    for i: uint256 in range(MAX_PROVIDERS):
        if cur == empty(address):
            break
        staked: uint256 = staticcall Ledger(self.ledger).stakes(cur, role)
        if staked >= minimum and cur != sender:
            eligible += 1
            w: uint256 = self._weight(cur, role, staked)
            if w > 0:
                pool.append(cur)
                weights.append(w)
                total += w
        cur = self.next_provider[role][cur]
    if eligible < k:
        raise "NotEnoughExecutors"
    if len(pool) < k:
        raise "LedgerError"
    chosen: DynArray[address, MAX_EXECUTORS] = []
    for step: uint256 in range(k, bound=MAX_EXECUTORS):
        r: uint256 = convert(sha256(concat(seed, slice(convert(step, bytes32), 28, 4))), uint256) % total
        for i: uint256 in range(len(pool), bound=MAX_PROVIDERS):
            w: uint256 = weights[i]
            if r < w:
                chosen.append(pool[i])
                total -= w
                weights[i] = 0
                break
            r -= w
    return chosen


@external
def register_job(
    sender: address, nonce: uint256, job: bytes32, task: bytes32, job_type: String[256],
    inputs: DynArray[bytes32, 256], fee: uint256, executors: uint256, replication: bytes32,
    commit_window_ms: uint256, reveal_window_ms: uint256, role: uint8, resolver: address, quorum: uint256,
    model: bytes32, v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(
        abi_encode(
            REGISTER_JOB_T, sender, nonce, job, task, keccak256(job_type), self._hash_hashes(inputs), fee,
            executors, replication, commit_window_ms, reveal_window_ms, role, resolver, quorum, model,
        )
    )
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, struct_hash, v, r, s)
    # the field ranges of deai.ledger.txs.RegisterJob, for calldata that did not come through a backend
    assert fee <= MAX_AMOUNT and executors >= 1 and executors <= 1024 and quorum <= 1023, "MalformedTx"
    assert commit_window_ms >= 1 and commit_window_ms <= 2**40, "MalformedTx"
    assert reveal_window_ms >= 1 and reveal_window_ms <= 2**40 and len(job_type) <= 256, "MalformedTx"
    if self.jobs[job].status != 0:
        raise "DuplicateEntity"
    self._check_registration(
        job_type, fee, executors, commit_window_ms, reveal_window_ms, role, resolver, quorum, model
    )
    escrow: uint256 = fee * executors
    coordinator: address = empty(address)
    if task != empty(bytes32):
        t: Task = staticcall Ledger(self.ledger).tasks(task)
        if t.status == 0:
            raise "UnknownTask"
        if t.status != OPEN:
            raise "TaskClosed"
        coordinator = t.coordinator
        if sender != coordinator:
            raise "NotAuthorized"
        if t.budget < escrow:
            raise "InsufficientEscrow"
    if resolver != empty(address):
        if coordinator != empty(address):
            if resolver != coordinator:
                raise "NotAuthorized"
        elif resolver not in resolvers:
            raise "NotAuthorized"
    if task != empty(bytes32):
        self._op(OP_ESCROW_TASK, empty(address), 0, escrow, task)
    else:
        self._op(OP_ESCROW, sender, 0, escrow, empty(bytes32))
    seed: bytes32 = sha256(concat(head, job))
    drawn: DynArray[address, MAX_EXECUTORS] = self._draw(sender, role, fee, executors, seed)
    commit_deadline: uint256 = now + commit_window_ms
    reveal_deadline: uint256 = commit_deadline + reveal_window_ms
    self.jobs[job] = Job(
        creator=sender, task=task, fee=fee, escrow=escrow, role=role, seed=seed, replication=replication,
        commit_deadline=commit_deadline, reveal_deadline=reveal_deadline, resolver=resolver, quorum=quorum,
        model=model, commits=0, reveals=0, replicated=0, primary=0, status=OPEN, digest=empty(bytes32),
    )
    self.executors[job] = drawn
    log JobRegistered(
        job=job, creator=sender, task=task, executors=drawn, fee=fee, commit_deadline=commit_deadline,
        reveal_deadline=reveal_deadline,
    )


# -- commit-reveal ----------------------------------------------------------------------------------------


@external
def commit(sender: address, nonce: uint256, job: bytes32, commitment: bytes32, v: uint8, r: bytes32, s: bytes32):
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, keccak256(abi_encode(COMMIT_T, sender, nonce, job, commitment)), v, r, s)
    j: Job = self._open_job(job)
    if not self._is_executor(job, sender):
        raise "NotAnExecutor"
    if now >= j.commit_deadline:
        raise "CommitAfterDeadline"
    if self.duties[job][sender].committed:
        raise "DuplicateCommit"
    if staticcall Ledger(self.ledger).stakes(sender, j.role) < self._min_executor_stake(j.role, j.fee):
        raise "StakeBelowMinimum"
    self._op(OP_LOCK, sender, j.role, 0, empty(bytes32))
    self.duties[job][sender] = Duty(commitment=commitment, digest=empty(bytes32), committed=True, revealed=False)
    self.jobs[job].commits = j.commits + 1
    log Committed(job=job, executor=sender, commitment=commitment)


@external
def reveal(
    sender: address, nonce: uint256, job: bytes32, digest: bytes32, salt: bytes32, v: uint8, r: bytes32, s: bytes32
):
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, keccak256(abi_encode(REVEAL_T, sender, nonce, job, digest, salt)), v, r, s)
    j: Job = self._open_job(job)
    d: Duty = self.duties[job][sender]
    if not d.committed:
        if not self._is_executor(job, sender):
            raise "NotAnExecutor"
        raise "RevealWithoutCommit"
    if d.revealed:
        raise "DuplicateReveal"
    if not self._reveals_open(j, now, len(self.executors[job])):
        raise "RevealTooEarly"
    if now >= j.reveal_deadline:
        raise "RevealAfterDeadline"
    if keccak256(concat(job, convert(sender, bytes20), digest, salt)) != d.commitment:
        raise "CommitmentMismatch"
    self.duties[job][sender].digest = digest
    self.duties[job][sender].revealed = True
    self.jobs[job].reveals = j.reveals + 1
    log Revealed(job=job, executor=sender, digest=digest)


@external
def reveal_replication(
    sender: address, nonce: uint256, job: bytes32, replicated: bool, primary: uint256, salt: bytes32,
    v: uint8, r: bytes32, s: bytes32,
):
    struct_hash: bytes32 = keccak256(abi_encode(REVEAL_REPLICATION_T, sender, nonce, job, replicated, primary, salt))
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, struct_hash, v, r, s)
    assert primary <= 1023, "MalformedTx"
    j: Job = self._open_job(job)
    if sender != j.creator:
        raise "NotAuthorized"
    if j.replicated != 0:
        raise "DuplicateReveal"
    n: uint256 = len(self.executors[job])
    if not self._reveals_open(j, now, n):
        raise "RevealTooEarly"
    if now >= j.reveal_deadline:
        raise "RevealAfterDeadline"
    if primary >= n:
        raise "ReplicationMismatch"
    flag: bytes1 = 0x00
    if replicated:
        flag = 0x01
    if keccak256(concat(job, flag, slice(convert(primary, bytes32), 30, 2), salt)) != j.replication:
        raise "ReplicationMismatch"
    self.jobs[job].replicated = 2 if replicated else 1
    self.jobs[job].primary = primary
    log ReplicationRevealed(job=job, replicated=replicated, primary=primary)


# -- resolution -------------------------------------------------------------------------------------------


@external
def resolve_job(sender: address, nonce: uint256, job: bytes32, v: uint8, r: bytes32, s: bytes32):
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, keccak256(abi_encode(RESOLVE_JOB_T, sender, nonce, job)), v, r, s)
    j: Job = self._open_job(job)
    if j.resolver != empty(address) and now < j.reveal_deadline + resolve_grace_ms:
        raise "NotAuthorized"
    if j.replicated == 0:
        if now < j.reveal_deadline:
            raise "JobNotResolvable"
        paid: DynArray[address, MAX_EXECUTORS] = []
        for e: address in self.executors[job]:
            if self.duties[job][e].revealed:
                paid.append(e)
        self._settle(job, j, paid, 5, empty(bytes32), False, True)
        return
    required: DynArray[address, MAX_EXECUTORS] = self._required(job, j)
    revealed: DynArray[address, MAX_EXECUTORS] = self._revealed(job, j, required, now)
    # the most common digest, if unique (Counter.most_common(2) of the reference)
    top: uint256 = 0
    second: uint256 = 0
    best: bytes32 = empty(bytes32)
    for e: address in revealed:
        d: bytes32 = self.duties[job][e].digest
        count: uint256 = 0
        for o: address in revealed:
            if self.duties[job][o].digest == d:
                count += 1
        if count > top:
            if d != best:
                second = top
            top = count
            best = d
        elif count > second and d != best:
            second = count
    if top > 0 and top > second and top >= self._quorum(j, len(required)):
        winners: DynArray[address, MAX_EXECUTORS] = []
        for e: address in revealed:
            if self.duties[job][e].digest == best:
                winners.append(e)
        self._settle(job, j, winners, 2, best, True, True)
    else:
        self._settle(job, j, [], 3 if len(revealed) > 0 else 4, empty(bytes32), True, True)


@external
def accept_result(
    sender: address, nonce: uint256, job: bytes32, accepted: DynArray[address, 256], v: uint8, r: bytes32, s: bytes32
):
    struct_hash: bytes32 = keccak256(abi_encode(ACCEPT_RESULT_T, sender, nonce, job, self._hash_addresses(accepted)))
    now: uint256 = 0
    head: bytes32 = empty(bytes32)
    now, head = self._begin(sender, nonce, struct_hash, v, r, s)
    assert len(accepted) <= MAX_EXECUTORS, "MalformedTx"
    for i: uint256 in range(len(accepted), bound=MAX_EXECUTORS):
        for k: uint256 in range(i, bound=MAX_EXECUTORS):
            assert accepted[k] != accepted[i], "MalformedTx"  # repeated items
    j: Job = self._open_job(job)
    if j.resolver == empty(address):
        raise "NotAuthorized"
    if sender != j.resolver:
        raise "NotAuthorized"
    required: DynArray[address, MAX_EXECUTORS] = self._required(job, j)
    revealed: DynArray[address, MAX_EXECUTORS] = self._revealed(job, j, required, now)
    if len(accepted) == 0:
        raise "BadAcceptance"
    winners: DynArray[address, MAX_EXECUTORS] = []
    for a: address in accepted:
        if not self._has(revealed, a):
            raise "BadAcceptance"
        winners.append(a)
    for e: address in revealed:
        if self._has(winners, e):
            continue
        d: bytes32 = self.duties[job][e].digest
        for a: address in winners:
            if self.duties[job][a].digest == d:
                raise "BadAcceptance"
    self._settle(job, j, winners, 2, empty(bytes32), True, len(winners) >= self._quorum(j, len(required)))


@internal
def _settle(
    job_id: bytes32, job: Job, winners: DynArray[address, MAX_EXECUTORS], status: uint8, digest: bytes32,
    reputation: bool, quorum: bool,
):
    """rules.jobs._settle: pay the winners, slash the committed faults, report the missed, refund,
    release the locks."""
    role: uint8 = job.role
    escrow: uint256 = job.escrow
    royalty_total: uint256 = 0
    host_bps: uint256 = 0
    if job.model != empty(bytes32):
        host_bps = (staticcall Ledger(self.ledger).models(job.model)).host_bps
    for w: address in winners:
        royalty: uint256 = 0
        if job.model != empty(bytes32):
            royalty = job.fee * (BPS - host_bps) // BPS
            self._op(OP_ROYALTY, empty(address), 0, royalty, job.model)
        self._op(OP_PAY, w, 0, job.fee - royalty, empty(bytes32))
        royalty_total += royalty
        escrow -= job.fee
    abandoned: bool = job.replicated == 0
    required: DynArray[address, MAX_EXECUTORS] = self.executors[job_id]
    if not abandoned:
        required = self._required(job_id, job)
    faulted: DynArray[address, MAX_EXECUTORS] = []
    withheld: DynArray[bool, MAX_EXECUTORS] = []
    missed: DynArray[address, MAX_EXECUTORS] = []
    for e: address in required:
        d: Duty = self.duties[job_id][e]
        if not d.committed:
            missed.append(e)
        if abandoned or self._has(winners, e) or not d.committed:
            continue
        if not d.revealed:
            faulted.append(e)
            withheld.append(True)
        elif quorum and len(winners) > 0:
            faulted.append(e)
            withheld.append(False)
    cuts: DynArray[uint256, MAX_EXECUTORS] = []
    pool: uint256 = 0
    for f: address in faulted:
        cut: uint256 = staticcall Ledger(self.ledger).stakes(f, role) * slash_bps // BPS
        self._op(OP_SLASH, f, role, cut, empty(bytes32))
        cuts.append(cut)
        pool += cut
        if reputation:
            self._rep(f, role, rep_job_fault)
    share: uint256 = 0
    if len(winners) > 0:
        share = pool * slash_reward_bps // BPS // len(winners)
    for w: address in winners:
        self._op(OP_PAY, w, 0, share, empty(bytes32))
        if reputation:
            self._rep(w, role, rep_job_win)
    burned: uint256 = pool - share * len(winners)
    self._op(OP_BURN, empty(address), 0, burned, empty(bytes32))
    if job.task != empty(bytes32):
        self._op(OP_REFUND_TASK, empty(address), 0, escrow, job.task)
    else:
        self._op(OP_PAY, job.creator, 0, escrow, empty(bytes32))
    for e: address in self.executors[job_id]:
        if self.duties[job_id][e].committed:
            self._op(OP_UNLOCK, e, role, 0, empty(bytes32))
    self.jobs[job_id].escrow = 0
    self.jobs[job_id].status = status
    self.jobs[job_id].digest = digest
    for i: uint256 in range(len(faulted), bound=MAX_EXECUTORS):
        reason: String[64] = "wrong result"
        if withheld[i]:
            reason = "withheld reveal"
        log Slashed(account=faulted[i], role=role, amount=cuts[i], reason=reason, job=job_id)
    name: String[16] = "accepted"
    if status == 3:
        name = "no_majority"
    elif status == 4:
        name = "failed"
    elif status == 5:
        name = "abandoned"
    log JobResolved(
        job=job_id, status=name, digest=digest, accepted=winners, faulted=faulted, missed=missed,
        paid=job.fee * len(winners) - royalty_total, royalty=royalty_total, slash_reward=share, burned=burned,
        refund=escrow,
    )


@internal
def _rep(account: address, role: uint8, delta: int256):
    if delta >= 0:
        self._op(OP_REP_UP, account, role, convert(delta, uint256), empty(bytes32))
    else:
        self._op(OP_REP_DOWN, account, role, convert(-delta, uint256), empty(bytes32))
