"""The machine's Ed25519 verifier against RFC 8032's vectors and OpenSSL (cryptography)."""

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from device import ed25519

# RFC 8032, section 7.1: (secret key, public key, message, signature), hex.
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_rfc8032_vectors() -> None:
    for secret, public, message, signature in RFC8032:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
        assert _public(key).hex() == public  # the vectors are copied right
        assert key.sign(bytes.fromhex(message)).hex() == signature
        pub, msg, sig = (ed25519.from_hex(x) for x in (public, message, signature))
        assert ed25519.verify(pub, msg, sig)
        assert not ed25519.verify(pub, msg + b"\x00", sig)
        assert not ed25519.verify(pub, msg, sig[:63] + bytes([sig[63] ^ 0x10]))


def test_rejects_malformed_input() -> None:
    _, public, message, signature = RFC8032[1]
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert not ed25519.verify(pub[:31], msg, sig)
    assert not ed25519.verify(pub, msg, sig[:63])
    # S + L: the same point, but S out of range (malleability) is refused
    s = int.from_bytes(sig[32:], "little") + ed25519.L
    assert not ed25519.verify(pub, msg, sig[:32] + s.to_bytes(32, "little"))
    assert not ed25519.verify(b"\xff" * 32, msg, sig)  # y >= p: not a point


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=600), seed=st.binary(min_size=32, max_size=32))
def test_agrees_with_openssl(message: bytes, seed: bytes) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signature = key.sign(message)
    assert ed25519.verify(_public(key), message, signature)


@settings(max_examples=60, deadline=None)
@given(
    message=st.binary(max_size=300),
    seed=st.binary(min_size=32, max_size=32),
    flip=st.integers(min_value=0, max_value=64 * 8 - 1),
)
def test_a_flipped_bit_never_verifies(message: bytes, seed: bytes, flip: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signature = bytearray(key.sign(message))
    signature[flip // 8] ^= 1 << (flip % 8)
    assert not ed25519.verify(_public(key), message, bytes(signature))


@settings(max_examples=60, deadline=None)
@given(
    message=st.binary(max_size=300),
    other=st.binary(min_size=1, max_size=300),
    seed=st.binary(min_size=32, max_size=32),
    seed2=st.binary(min_size=32, max_size=32),
)
def test_other_messages_and_keys_never_verify(
    message: bytes, other: bytes, seed: bytes, seed2: bytes
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signature = key.sign(message)
    assert not ed25519.verify(_public(key), message + other, signature)
    if seed2 != seed:
        assert not ed25519.verify(
            _public(Ed25519PrivateKey.from_private_bytes(seed2)), message, signature
        )


@given(data=st.binary(max_size=1000))
def test_sha512_matches_hashlib(data: bytes) -> None:
    assert ed25519.sha512(data) == hashlib.sha512(data).digest()
