import pytest
import torch

from deai.core.tensorio import to_safetensors
from deai.protocol.jobs.commit_reveal import check_deadline, check_reveal, check_upload, commit_output
from deai.protocol.jobs.errors import BadOutput, CommitmentMismatch, DeadlinePassed, UploadMismatch

JOB = "0x" + "11" * 32
ALICE = "0x" + "aa" * 20
BOB = "0x" + "bb" * 20
LAYOUT = {"y": ((3,), torch.float32)}


def test_commitment_binds_job_executor_digest_and_salt(store):
    digest = store.put(to_safetensors({"y": torch.ones(3)}))
    o = commit_output(JOB, ALICE, digest)
    check_reveal(o.commitment, JOB, ALICE, o.digest, o.salt)
    with pytest.raises(CommitmentMismatch, match="does not match"):
        check_reveal(o.commitment, JOB, BOB, o.digest, o.salt)  # the copycat's case
    with pytest.raises(CommitmentMismatch):
        check_reveal(o.commitment, JOB, ALICE, "0x" + "00" * 32, o.salt)
    with pytest.raises(CommitmentMismatch):
        check_reveal(o.commitment, "0x" + "12" * 32, ALICE, o.digest, o.salt)
    with pytest.raises(CommitmentMismatch, match="malformed"):
        check_reveal(o.commitment, JOB, ALICE, "0x12", o.salt)
    assert commit_output(JOB, ALICE, digest).commitment != o.commitment  # fresh salt


def test_upload_checks(store):
    good = store.put(to_safetensors({"y": torch.ones(3)}))
    assert torch.equal(check_upload(store, "0x" + good, LAYOUT)["y"], torch.ones(3))
    with pytest.raises(UploadMismatch, match="no upload"):
        check_upload(store, "0x" + "ee" * 32, LAYOUT)
    wrong = store.put(to_safetensors({"y": torch.ones(4)}))
    with pytest.raises(BadOutput, match="shape"):
        check_upload(store, "0x" + wrong, LAYOUT)
    nan = store.put(to_safetensors({"y": torch.tensor([1.0, float("nan"), 0.0])}))
    with pytest.raises(BadOutput, match="non-finite"):
        check_upload(store, "0x" + nan, LAYOUT)
    junk = store.put(b"not safetensors at all")
    with pytest.raises(BadOutput):
        check_upload(store, "0x" + junk, LAYOUT)
    store.path(good).write_bytes(to_safetensors({"y": torch.zeros(3)}))  # tampered after upload
    with pytest.raises(UploadMismatch, match="hash"):
        check_upload(store, "0x" + good, LAYOUT)


def test_deadline():
    check_deadline(10, 10, "commit")
    with pytest.raises(DeadlinePassed, match="after its deadline"):
        check_deadline(11, 10, "commit")
