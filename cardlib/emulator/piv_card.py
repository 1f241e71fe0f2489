"""The emulated operator card: a PIV card application (NIST SP 800-73-4 subset).

Rules it enforces (the tests check them): PIN and PUK counters are decremented and
persisted before the comparison and block at zero; key 9A signs only after the PIN;
9E signs without it; key generation and PUT DATA only after management-key mutual
authentication, whose witness is single-use; long commands arrive by ISO chaining
(or as extended APDUs); PIN state and the management authentication survive a warm
reset and a re-SELECT and die with a power-off; VERIFY ``00 20 FF 80`` forgets the PIN.
"""

from __future__ import annotations

import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..apdu import CommandApdu, join_response
from ..constants import (
    CLA_CHAINING,
    PIV_GET_DATA_P1P2,
    PIV_RID,
    PIV_VERIFY_RESET,
    Aid,
    Ins,
    PivAlgorithm,
    PivIns,
    PivKeyRef,
    PivObject,
)
from ..errors import CardDataError
from ..piv_objects import (
    TAG_CHALLENGE,
    TAG_RESPONSE,
    TAG_WITNESS,
    algorithm_of,
    application_property_template,
    data_object_content,
    discovery_object,
    dynamic_auth,
    parse_dynamic_auth,
    parse_tag_list,
    unpad_pin,
)
from ..public_key import encode_public_key
from ..status import SW, CardStatus
from .card_core import CardCore, Handler, VolatileState
from .state import AppState, PinState

MAX_CHAINED_DATA = 4096
MAX_OBJECT = 3072
SIGNING_KEYS = (PivKeyRef.AUTHENTICATION, PivKeyRef.CARD_AUTHENTICATION)
KEY_ALGORITHMS = (PivAlgorithm.RSA_2048, PivAlgorithm.ECC_P256)
WRITABLE_OBJECTS = (PivObject.CHUID, PivObject.AUTH_CERT, PivObject.CARD_AUTH_CERT)
LABEL = "Juki Operator Card"
PIV_AID_HEX = Aid.PIV.hex()
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


RANDOM_CHALLENGE = 16  # bytes answered to a bare GENERAL AUTHENTICATE challenge request


def raw_rsa(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """m^d mod n by the CRT: PIV RSA keys sign a block the host has already padded."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    m = int.from_bytes(block, "big")
    if len(block) != key.key_size // 8 or m >= n:
        raise CardStatus(SW.WRONG_DATA)
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(key.key_size // 8, "big")


class PivCard(CardCore):
    """Answers raw C-APDUs of the PIV application; ``persist`` after every change."""

    def _command_table(self) -> dict[int, Handler]:
        return {
            Ins.SELECT: self._select,
            PivIns.GET_DATA: self._get_data,
            PivIns.VERIFY: self._verify,
            PivIns.CHANGE_REFERENCE_DATA: self._change_reference_data,
            PivIns.RESET_RETRY_COUNTER: self._reset_retry_counter,
            PivIns.GENERAL_AUTHENTICATE: self._general_authenticate,
            PivIns.GENERATE_ASYMMETRIC_KEY_PAIR: self._generate,
            PivIns.PUT_DATA: self._put_data,
        }

    @property
    def piv(self) -> AppState:
        return self.state.apps[PIV_AID_HEX]

    # ---- dispatch -----------------------------------------------------------------------

    def _process(self, apdu: CommandApdu) -> bytes:
        if apdu.ins == Ins.GET_RESPONSE:
            return self._get_response(apdu)
        self.ram.pending_response = b""
        witness, self.ram.witness = self.ram.witness, None  # single-use: any command ends it
        apdu_or_sw = self._unchain(apdu)
        if isinstance(apdu_or_sw, int):
            return join_response(b"", apdu_or_sw)
        apdu = apdu_or_sw
        if apdu.cla != 0x00:
            return join_response(b"", SW.CLA_NOT_SUPPORTED)
        if apdu.ins not in self._handlers:
            return join_response(b"", SW.INS_NOT_SUPPORTED)
        if apdu.ins != Ins.SELECT and self.ram.selected_aid != PIV_AID_HEX:
            return join_response(b"", SW.CONDITIONS_NOT_SATISFIED)
        if apdu.ins == PivIns.GENERAL_AUTHENTICATE and apdu.p2 == PivKeyRef.MANAGEMENT:
            self.ram.witness = witness  # only the management step 2 may consume it
        return self._respond(*self._run(apdu), apdu.ne)

    def _unchain(self, apdu: CommandApdu) -> CommandApdu | int:
        """Collect ISO 7816-4 chained segments; the last one carries the whole command."""
        header = (apdu.ins, apdu.p1, apdu.p2)
        pending = self.ram.chain
        if pending is not None and pending[0] != header:
            self.ram.chain = pending = None  # a different command ends an unfinished chain
        data = (pending[1] if pending else b"") + apdu.data
        if len(data) > MAX_CHAINED_DATA:
            self.ram.chain = None
            return SW.WRONG_LENGTH
        if apdu.cla & CLA_CHAINING:
            self.ram.chain = (header, data)
            return SW.OK
        self.ram.chain = None
        return CommandApdu(apdu.cla, apdu.ins, apdu.p1, apdu.p2, data, apdu.ne)

    # ---- commands -----------------------------------------------------------------------

    def _select(self, apdu: CommandApdu) -> bytes:
        full = bytes.fromhex(PIV_AID_HEX)
        if apdu.p1 != 0x04:
            raise CardStatus(SW.INCORRECT_P1P2)
        if len(apdu.data) < len(PIV_RID) or not full.startswith(apdu.data):
            raise CardStatus(SW.FILE_NOT_FOUND)
        # SP 800-73-4 3.1.1: selecting the PIV application again leaves its security
        # status unchanged (the card has no other application whose selection would clear it)
        self.ram = VolatileState(selected_aid=PIV_AID_HEX, status_aid=PIV_AID_HEX,
                                 verified=self.ram.verified, admin=self.ram.admin)
        return application_property_template(LABEL, (*KEY_ALGORITHMS, PivAlgorithm.AES_128))

    def _require_p1p2_3fff(self, apdu: CommandApdu) -> None:
        if (apdu.p1 << 8 | apdu.p2) != PIV_GET_DATA_P1P2:
            raise CardStatus(SW.INCORRECT_P1P2)

    def _get_data(self, apdu: CommandApdu) -> bytes:
        self._require_p1p2_3fff(apdu)
        try:
            tag, rest = parse_tag_list(apdu.data)
        except CardDataError:
            raise CardStatus(SW.WRONG_DATA) from None
        if rest:
            raise CardStatus(SW.WRONG_DATA)
        if tag == PivObject.DISCOVERY:
            return discovery_object()
        stored = self.piv.files.get(f"{tag:06X}")
        if stored is None or not stored.data:
            raise CardStatus(SW.FILE_NOT_FOUND)
        return bytes.fromhex(stored.data)

    def _pin(self, reference: int) -> PinState:
        pin = self.piv.pins.get(f"{reference:02X}")
        if pin is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        return pin

    def _check(self, reference: int, block: bytes) -> None:
        """Spend a try (durably), then compare; success restores the counter."""
        pin = self._pin(reference)
        if pin.tries_left == 0:
            raise CardStatus(SW.AUTH_METHOD_BLOCKED)
        value = unpad_pin(block)
        if value is None:
            raise CardStatus(SW.WRONG_DATA)
        pin.tries_left -= 1
        self._save()
        if not hmac.compare_digest(pin.hash(value), pin.digest or ""):
            raise CardStatus(SW.VERIFY_FAILED | pin.tries_left)
        pin.tries_left = pin.max_tries
        self._save()

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p2 != PivKeyRef.PIN:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        key = f"{PivKeyRef.PIN:02X}"
        if apdu.p1 == PIV_VERIFY_RESET and not apdu.data:  # forget: no try spent
            self.ram.verified.discard(key)
            return b""
        if apdu.p1 != 0x00:
            raise CardStatus(SW.INCORRECT_P1P2)
        pin = self._pin(PivKeyRef.PIN)
        if not apdu.data:
            if key in self.ram.verified:
                return b""
            raise CardStatus(SW.VERIFY_FAILED | pin.tries_left)
        self.ram.verified.discard(key)
        self._check(PivKeyRef.PIN, apdu.data)
        self.ram.verified.add(key)
        return b""

    def _replace_reference(self, apdu: CommandApdu, checked: int, replaced: int) -> bytes:
        """``old ‖ new`` (8 + 8 bytes, FF-padded): the old value of ``checked`` is spent and
        compared like a VERIFY, then ``replaced`` gets the new value (and full tries)."""
        if len(apdu.data) != 16:
            raise CardStatus(SW.WRONG_DATA)
        new = unpad_pin(apdu.data[8:])
        if new is None or not self._pin(replaced).accepts_format(new):
            raise CardStatus(SW.WRONG_DATA)
        self._check(checked, apdu.data[:8])
        self._pin(replaced).set(new)
        self._save()
        return b""

    def _change_reference_data(self, apdu: CommandApdu) -> bytes:
        """The PIN or the PUK, by its own old value."""
        if apdu.p1 != 0x00 or apdu.p2 not in (PivKeyRef.PIN, PivKeyRef.PUK):
            raise CardStatus(SW.INCORRECT_P1P2)
        return self._replace_reference(apdu, checked=apdu.p2, replaced=apdu.p2)

    def _reset_retry_counter(self, apdu: CommandApdu) -> bytes:
        """A new PIN, by the PUK."""
        if apdu.p1 != 0x00 or apdu.p2 != PivKeyRef.PIN:
            raise CardStatus(SW.INCORRECT_P1P2)
        return self._replace_reference(apdu, checked=PivKeyRef.PUK, replaced=PivKeyRef.PIN)

    # ---- keys ---------------------------------------------------------------------------

    def _signing_key(self, reference: int) -> SigningKey:
        pem = self.piv.keys.get(f"{reference:02X}")
        if pem is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        key = self._key_from_pem(pem)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        return key

    def _general_authenticate(self, apdu: CommandApdu) -> bytes:
        try:
            items = parse_dynamic_auth(apdu.data)
        except CardDataError:
            raise CardStatus(SW.WRONG_DATA) from None
        if apdu.p2 == PivKeyRef.MANAGEMENT and items == {TAG_CHALLENGE: b""}:
            # a bare challenge request (OpenSC's C_GenerateRandom, P1 00): random bytes
            # that open nothing (no external-authentication step follows on this card)
            return dynamic_auth(challenge=secrets.token_bytes(RANDOM_CHALLENGE))
        if apdu.p2 == PivKeyRef.MANAGEMENT:
            return self._management_auth(apdu.p1, items)
        if apdu.p2 not in SIGNING_KEYS:
            raise CardStatus(SW.INCORRECT_P1P2)
        key = self._signing_key(apdu.p2)
        if apdu.p1 != algorithm_of(key.public_key()):
            raise CardStatus(SW.INCORRECT_P1P2)
        if apdu.p2 == PivKeyRef.AUTHENTICATION and f"{PivKeyRef.PIN:02X}" not in self.ram.verified:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        challenge = items.get(TAG_CHALLENGE)
        if items.get(TAG_RESPONSE) != b"" or not challenge:
            raise CardStatus(SW.WRONG_DATA)
        if isinstance(key, rsa.RSAPrivateKey):
            signature = raw_rsa(key, challenge)
        else:
            if len(challenge) > 32:
                raise CardStatus(SW.WRONG_DATA)
            digest = challenge.rjust(32, b"\x00")
            signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return dynamic_auth(response=signature)

    def _admin_cipher(self) -> Cipher:
        hex_key = self.piv.admin_key
        if hex_key is None:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        return Cipher(algorithms.AES(bytes.fromhex(hex_key)), modes.ECB())

    def _management_auth(self, algorithm: int, items: dict[int, bytes]) -> bytes:
        """Step 1 (80 empty): encrypted witness. Step 2 (80 witness, 81 challenge): the
        host decrypted our witness; answer its challenge encrypted (82)."""
        if algorithm != PivAlgorithm.AES_128:
            raise CardStatus(SW.INCORRECT_P1P2)
        cipher = self._admin_cipher()
        self.ram.admin = False
        witness, challenge = items.get(TAG_WITNESS), items.get(TAG_CHALLENGE)
        if witness == b"" and challenge is None:
            self.ram.witness = secrets.token_bytes(16)
            encryptor = cipher.encryptor()
            return dynamic_auth(witness=encryptor.update(self.ram.witness) + encryptor.finalize())
        expected, self.ram.witness = self.ram.witness, None
        if witness is None or challenge is None or len(challenge) != 16 or expected is None:
            raise CardStatus(SW.WRONG_DATA)
        if not hmac.compare_digest(witness, expected):
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        self.ram.admin = True
        encryptor = cipher.encryptor()
        return dynamic_auth(response=encryptor.update(challenge) + encryptor.finalize())

    def _require_admin(self) -> None:
        if not self.ram.admin:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)

    def _generate(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00 or apdu.p2 not in SIGNING_KEYS:
            raise CardStatus(SW.INCORRECT_P1P2)
        self._require_admin()
        if len(apdu.data) != 5 or apdu.data[:4] != bytes.fromhex("AC038001"):
            raise CardStatus(SW.WRONG_DATA)
        algorithm = apdu.data[4]
        if algorithm == PivAlgorithm.RSA_2048:
            key: SigningKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == PivAlgorithm.ECC_P256:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise CardStatus(SW.WRONG_DATA)
        self._store_new_key(self.piv.keys, f"{apdu.p2:02X}", key)
        return encode_public_key(key.public_key())

    def _put_data(self, apdu: CommandApdu) -> bytes:
        self._require_p1p2_3fff(apdu)
        self._require_admin()
        try:
            tag, rest = parse_tag_list(apdu.data)
        except CardDataError:
            raise CardStatus(SW.WRONG_DATA) from None
        if tag not in WRITABLE_OBJECTS:
            raise CardStatus(SW.REFERENCED_DATA_NOT_FOUND)
        if len(rest) > MAX_OBJECT:
            raise CardStatus(SW.WRONG_DATA)
        try:
            data_object_content(rest, "PUT DATA")  # exactly one well-formed 53 template
        except CardDataError:
            raise CardStatus(SW.WRONG_DATA) from None
        self.piv.files[f"{tag:06X}"].data = rest.hex()
        self._save()
        return b""

