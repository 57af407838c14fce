import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct

from deai.core.accounts import Account, check_address, recover_signer, verify_signature
from deai.core.errors import BadSignature, DeaiError, EncodingError


def test_sign_and_verify_round_trip():
    acct = Account.from_seed(7)
    sig = acct.sign(b"payload")
    assert len(sig) == 65
    assert recover_signer(b"payload", sig) == acct.address
    assert verify_signature(b"payload", sig, acct.address)
    assert not verify_signature(b"payload!", sig, acct.address)
    assert not verify_signature(b"payload", sig, Account.from_seed(8).address)


def test_signature_is_standard_eip191():
    acct = Account.from_seed(1)
    sig = acct.sign(b"hello")
    assert EthAccount.recover_message(encode_defunct(primitive=b"hello"), signature=sig) == acct.address
    theirs = EthAccount.sign_message(encode_defunct(primitive=b"hello"), acct.private_key).signature
    assert recover_signer(b"hello", bytes(theirs)) == acct.address


def test_from_seed_is_deterministic_and_distinct():
    assert Account.from_seed(3, 1).address == Account.from_seed(3, 1).address
    assert Account.from_seed(3, 1).address != Account.from_seed(3, 2).address
    assert "private" not in repr(Account.from_seed(3))


def test_keystore_round_trip(tmp_path):
    acct = Account.create()
    path = acct.save(tmp_path / "k.json", "pw")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert Account.load(path, "pw").address == acct.address
    with pytest.raises(DeaiError, match="cannot decrypt"):
        Account.load(path, "wrong")
    with pytest.raises(DeaiError, match="cannot read keystore"):
        Account.load(tmp_path / "missing.json", "pw")


@pytest.mark.parametrize("sig", [b"", b"\x00" * 64, b"\x00" * 66, b"\x01" * 64 + b"\x05"])
def test_malformed_signatures_are_refused(sig):
    with pytest.raises(BadSignature):
        recover_signer(b"x", sig)


def test_address_checks():
    acct = Account.from_seed(2)
    assert check_address(acct.address.lower()) == acct.address
    broken = acct.address[:-1] + ("a" if acct.address[-1] != "a" else "b")
    mixed = broken[:2] + broken[2:].swapcase() if broken[2:].lower() != broken[2:] else broken
    for bad in ["0x123", "hello", 5, "0x" + "g" * 40]:
        with pytest.raises(EncodingError):
            check_address(bad)
    if mixed != mixed.lower() and mixed[2:] != mixed[2:].upper():
        with pytest.raises(EncodingError, match="checksum"):
            check_address(mixed)
