from typer.testing import CliRunner

from deai import __version__
from deai.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_account_new_show_list(tmp_path):
    env = {"DEAI_HOME": str(tmp_path), "DEAI_PASSWORD": "pw"}
    result = runner.invoke(app, ["account", "new"], env=env)
    assert result.exit_code == 0, result.output
    address = result.output.split()[1]
    shown = runner.invoke(app, ["account", "show", address], env=env)
    assert shown.exit_code == 0 and address in shown.output
    wrong = runner.invoke(app, ["account", "show", address, "--password", "nope"], env=env)
    assert wrong.exit_code == 1 and "cannot decrypt" in wrong.output
    assert address in runner.invoke(app, ["account", "list"], env=env).output


def test_blob_put_get_verify(tmp_path):
    env = {"DEAI_HOME": str(tmp_path)}
    src = tmp_path / "f.bin"
    src.write_bytes(b"some bytes" * 100)
    digest = runner.invoke(app, ["blob", "put", str(src)], env=env).output.strip()
    assert len(digest) == 64
    out = tmp_path / "copy.bin"
    assert runner.invoke(app, ["blob", "get", digest, "-o", str(out)], env=env).exit_code == 0
    assert out.read_bytes() == src.read_bytes()
    ok = runner.invoke(app, ["blob", "verify"], env=env)
    assert ok.exit_code == 0 and "0 corrupted" in ok.output
    (tmp_path / "blobs" / digest[:2] / digest).write_bytes(b"rot")
    bad = runner.invoke(app, ["blob", "verify"], env=env)
    assert bad.exit_code == 1 and "1 corrupted" in bad.output
    assert runner.invoke(app, ["blob", "get", "xyz", "-o", str(out)], env=env).exit_code == 1


def test_selfcheck_runs_real_operations(tmp_path):
    result = runner.invoke(app, ["selfcheck", "--out", str(tmp_path / "check"), "--participants", "3"])
    assert result.exit_code == 0, result.output
    assert "3/3 signed envelopes verified" in result.output
    assert "(bug)" not in result.output
    for reason in ["SenderMismatch", "WrongNetwork", "StaleTimestamp", "UnknownMessageType", "ReplayedNonce"]:
        assert reason in result.output
    assert "BlobCorrupted" in result.output
