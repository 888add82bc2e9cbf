"""Keys, manifests and signatures as the operator's CLI writes them, and the wave arithmetic."""

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from api.cli import main
from api.firmware import manifest as mf
from api.firmware import plan


def test_keygen_build_write_the_agreed_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "op.key"
    assert main(["firmware", "keygen", "--out", str(key)]) == 0
    public = capsys.readouterr().out.strip()
    assert len(public) == 64 and public == public.lower()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) == 64
    assert main(["firmware", "keygen", "--out", str(key)]) != 0  # never overwrites a key

    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "main.py").write_bytes(b"print(1)\n")
    (src / "boot.py").write_bytes(b"")
    (src / "lib" / "vend.mpy").write_bytes(b"\x4d" * 70_000)
    out = tmp_path / "out"
    args = ["firmware", "build", str(src), "--version", "1.2.0", "--key", str(key)]
    assert main([*args, "--out", str(out)]) == 0
    data = (out / "manifest.json").read_bytes()
    assert data.startswith(b'{"version":"1.2.0","files":[{"path":"boot.py","sha256":"e3b0c442')
    assert data.endswith(b'"size":9}],"allow_downgrade":false}')
    parsed = json.loads(data)
    assert [f["path"] for f in parsed["files"]] == ["boot.py", "lib/vend.mpy", "main.py"]
    signature = (out / "manifest.sig").read_text().strip()
    assert len(signature) == 128
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(bytes.fromhex(signature), data)
    assert (out / "lib" / "vend.mpy").read_bytes() == b"\x4d" * 70_000
    assert mf.verify(data, signature, ("ab" * 32, public)) == public
    with pytest.raises(mf.BadSignature):
        mf.verify(data + b" ", signature, (public,))
    (src / "bad name.py").write_bytes(b"")
    assert main(args) == 2  # file names the machine could not take


@pytest.mark.parametrize(
    "path",
    ["", "/abs.py", "a//b.py", "../up.py", "a/./b", "sp ace.py", "ü.py", "a\\b.py", "x" * 201],
)
def test_bad_paths_are_refused(path: str) -> None:
    assert not mf.valid_path(path)


def test_manifest_checks() -> None:
    good = {"version": "1.0.0", "files": [{"path": "a.py", "sha256": "0" * 64, "size": 1}]}
    assert mf.parse(json.dumps(good).encode()).total_bytes == 1
    for broken in (
        {**good, "version": "1 0"},
        {**good, "files": []},
        {**good, "files": [{"path": "a.py", "sha256": "0" * 63, "size": 1}]},
        {**good, "files": [{"path": "a.py", "sha256": "0" * 64, "size": -1}]},
        {**good, "files": [good["files"][0], good["files"][0]]},  # type: ignore[index]
        {**good, "allow_downgrade": "no"},
    ):
        with pytest.raises(mf.BadManifest):
            mf.parse(json.dumps(broken).encode())
    with pytest.raises(ValueError):
        mf.parse_public_keys("abc")


@given(st.integers(1, 2000), st.lists(st.integers(1, 99), max_size=4, unique=True))
def test_waves_cover_the_target_in_growing_steps(count: int, head: list[int]) -> None:
    waves = [*sorted(head), 100]
    sizes = plan.wave_sizes(count, waves)
    assert sizes[0] >= 1 and sizes[-1] == count
    assert sizes == sorted(sizes)
    assert [plan.wave_of(i, sizes) for i in range(count)] == sorted(
        plan.wave_of(i, sizes) for i in range(count)
    )


def test_wave_outcome() -> None:
    assert plan.wave_outcome(["succeeded", "sent"], 10) == "wait"
    assert plan.wave_outcome(["succeeded"] * 99 + ["failed"], 1) == "next"
    assert plan.wave_outcome(["succeeded"] * 98 + ["failed", "timed_out"], 1) == "pause"
    assert plan.wave_outcome(["canceled", "succeeded"], 0) == "next"
    assert plan.on_result("succeeded", "failed", "x", None) is None
    assert plan.on_result("sent", "expired", None, None) == plan.Move(
        "timed_out", "expired", clear=True
    )
