"""Ed25519 signature verification (RFC 8032, section 5.1.7), in plain Python ints.

The machine checks a release's signature with this before it touches its running
files. MicroPython has big integers and ``pow(a, b, m)`` but no Ed25519 and no
SHA-512, so both are written here from the RFC's math (SHA-512 from FIPS 180-4):
nothing but ``int`` arithmetic, which runs alike on CPython and MicroPython.

``verify(public_key, message, signature)`` -> bool; the key is 32 bytes, the
signature 64 bytes (both raw). The check is the cofactorless one OpenSSL makes:
``encode([S]B - [k]A) == R`` with ``S < L``, ``k = SHA-512(R || A || M) mod L``.

Only verification: no secret ever reaches a machine, so nothing here needs to
run in constant time.
"""

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
D2 = 2 * D % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
_BY = 4 * pow(5, P - 2, P) % P
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
BASE: "Point" = (_BX, _BY, 1, _BX * _BY % P)
ZERO: "Point" = (0, 1, 1, 0)


def _add(p: "Point", q: "Point") -> "Point":
    """RFC 8032, 5.1.4: addition in extended coordinates (complete: also doubles)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 * t2 % P
    d = 2 * z1 * z2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p: "Point") -> "Point":
    """RFC 8032, 5.1.4: doubling (a = -1)."""
    x1, y1, z1, _ = p
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    s = x1 + y1
    e = h - s * s % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _neg(p: "Point") -> "Point":
    return ((P - p[0]) % P, p[1], p[2], (P - p[3]) % P)


def _encode(p: "Point") -> bytes:
    x, y, z, _ = p
    zi = pow(z, P - 2, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(data: bytes) -> "Point | None":
    """RFC 8032, 5.1.3: a point from 32 bytes, or None when there is none."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    # x = sqrt(u / v), computed as (u v^3) (u v^7)^((p-5)/8)
    v3 = v * v * v % P
    x = u * v3 * pow(u * v3 * v3 * v % P, (P - 5) // 8, P) % P
    vxx = v * x * x % P
    if vxx != u:
        if vxx != (P - u) % P:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _combine(s: int, b: "Point", k: int, a: "Point") -> "Point":
    """[s]b + [k]a, both at once (Straus): one doubling per bit, not two."""
    both = _add(b, a)
    table = (None, b, a, both)
    acc = ZERO
    bit = 256  # s < L < 2**253 and k < L (int.bit_length is not on MicroPython)
    while bit > 0 and not (s >> (bit - 1)) | (k >> (bit - 1)):
        bit -= 1
    while bit > 0:
        bit -= 1
        acc = _double(acc)
        index = ((s >> bit) & 1) | (((k >> bit) & 1) << 1)
        if index:
            acc = _add(acc, table[index])  # type: ignore[arg-type]  # index > 0: a point
    return acc


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode(public_key)
    if a is None:
        return False
    r = bytes(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(sha512(r + bytes(public_key) + bytes(message)), "little") % L
    return _encode(_combine(s, BASE, k, _neg(a))) == r


# -- SHA-512 (FIPS 180-4), for MicroPython, whose hashlib has sha256 only --

_M = 0xFFFFFFFFFFFFFFFF
_H0 = (
    0x6A09E667F3BCC908,
    0xBB67AE8584CAA73B,
    0x3C6EF372FE94F82B,
    0xA54FF53A5F1D36F1,
    0x510E527FADE682D1,
    0x9B05688C2B3E6C1F,
    0x1F83D9ABFB41BD6B,
    0x5BE0CD19137E2179,
)
_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)  # fmt: skip


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (64 - n))) & _M


def _block(h: "list[int]", chunk: bytes) -> None:
    w = [int.from_bytes(chunk[i : i + 8], "big") for i in range(0, 128, 8)]
    for i in range(16, 80):
        x = w[i - 15]
        y = w[i - 2]
        s0 = _rotr(x, 1) ^ _rotr(x, 8) ^ (x >> 7)
        s1 = _rotr(y, 19) ^ _rotr(y, 61) ^ (y >> 6)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M)
    a, b, c, d, e, f, g, hh = h
    for i in range(80):
        s1 = _rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)
        ch = (e & f) ^ (~e & g)
        t1 = (hh + s1 + ch + _K[i] + w[i]) & _M
        s0 = _rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)
        maj = (a & b) ^ (a & c) ^ (b & c)
        hh = g
        g = f
        f = e
        e = (d + t1) & _M
        d = c
        c = b
        b = a
        a = (t1 + s0 + maj) & _M
    for i, v in enumerate((a, b, c, d, e, f, g, hh)):
        h[i] = (h[i] + v) & _M


def sha512(data: bytes) -> bytes:
    """SHA-512 of ``data`` (64 bytes)."""
    h = list(_H0)
    n = len(data)
    whole = n - n % 128
    for i in range(0, whole, 128):
        _block(h, data[i : i + 128])
    tail = bytes(data[whole:]) + b"\x80"
    tail += b"\x00" * ((112 - len(tail)) % 128) + (n * 8).to_bytes(16, "big")
    for i in range(0, len(tail), 128):
        _block(h, tail[i : i + 128])
    return b"".join(v.to_bytes(8, "big") for v in h)


def from_hex(text: str) -> bytes:
    """Bytes from lowercase or uppercase hex (``binascii`` stays off the board)."""
    if len(text) % 2:
        raise ValueError("odd-length hex")
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
